"""Shared test helpers: real daemons in subprocesses, a real sd_notify socket."""
