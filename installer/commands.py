"""Running the programs an install needs: a command with its output streamed and a time
limit, systemctl, the journal, and whether the service came up ready."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request

from installer import SERVICE, InstallError, Say

SYSTEMCTL_TIMEOUT_S = 120
PIP_TIMEOUT_S = 3600  # a pip install that compiles llama-cpp-python takes minutes
READY_TIMEOUT_S = 600
READY_POLL_S = 1.0
HEALTH_TIMEOUT_S = 3.0
JOURNAL_LINES = 30


def run(cmd: list[str], what: str, *, stream: bool = False,
         timeout: float = SYSTEMCTL_TIMEOUT_S, env: dict[str, str] | None = None) -> str:
    """Run ``cmd``; its output (streamed line by line when ``stream``); InstallError on failure."""
    try:
        if not stream:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False, env=env, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise InstallError(f"{what} failed ({' '.join(cmd[:3])}...):\n"
                                   + (done.stderr or done.stdout).strip()[-2000:])
            return done.stdout
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True, bufsize=1,
                              env=env) as proc:
            assert proc.stdout is not None
            # Reading the output blocks until the program ends it: the time limit needs a
            # timer of its own.
            killed = threading.Event()

            def kill() -> None:
                killed.set()
                proc.kill()

            overdue = threading.Timer(timeout, kill)
            overdue.start()
            lines = []
            try:
                for line in proc.stdout:
                    print(f"    {line.rstrip()}", flush=True)
                    lines.append(line)
                rc = proc.wait()
            finally:
                overdue.cancel()
        if killed.is_set():
            raise subprocess.TimeoutExpired(cmd, timeout)
        if rc != 0:
            tail = "".join(lines[-6:]).rstrip()
            raise InstallError(f"{what} failed (exit {rc}):\n{tail}")
        return "".join(lines)
    except subprocess.TimeoutExpired:
        raise InstallError(f"{what} took longer than {timeout:.0f} s") from None
    except OSError as exc:
        raise InstallError(f"{what} failed: {exc}") from None


def wait_ready(port: int | None, say: Say, timeout_s: float = READY_TIMEOUT_S,
               service: str = SERVICE, stale: str = "", poll_s: float = READY_POLL_S) -> None:
    """Wait until the unit is active and /health on ``port`` answers 200 (InstallError with
    the journal when it fails); with no port, active is enough. Each new state is shown as
    a "waiting for ..." line. An invocation whose id is ``stale`` (the one before a queued
    restart) does not count."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/health" if port else ""
    last = ""
    start = time.monotonic()
    while time.monotonic() < deadline:
        state = unit_state(service)
        if state in ("failed", "inactive") and time.monotonic() - start > 2 * poll_s:
            raise InstallError(f"{service} did not start ({state}). Last journal lines:\n"
                               + journal_tail(service))
        current = state == "active" and (not stale or show(service, "InvocationID") != stale)
        health = health_status(url) if url and current else ""
        if current and (not url or health == "200"):
            say(f"  {service} is ready: {status_text(service)}")
            return
        line = f"  waiting for {service}: {state}; {status_text(service)}" + (
            f"; /health {health}" if health else "")
        if line != last:
            say(line)
            last = line
        time.sleep(poll_s)
    raise InstallError(f"{service} was not ready after {timeout_s:.0f} s. Last journal lines:\n"
                       + journal_tail(service))


def journal_tail(service: str = SERVICE, lines: int = JOURNAL_LINES) -> str:
    proc = subprocess.run(["journalctl", "-u", f"{service}.service", "-n", str(lines),
                           "--no-pager", "-o", "short"], capture_output=True, text=True,
                          check=False, timeout=SYSTEMCTL_TIMEOUT_S)
    return proc.stdout.rstrip() or proc.stderr.rstrip()


def systemctl(*args: str, check: bool = True) -> None:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False,
                          timeout=SYSTEMCTL_TIMEOUT_S)
    if check and proc.returncode != 0:
        raise InstallError(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()}")


def unit_state(service: str = SERVICE) -> str:
    proc = subprocess.run(["systemctl", "is-active", f"{service}.service"], capture_output=True,
                          text=True, check=False, timeout=SYSTEMCTL_TIMEOUT_S)
    return proc.stdout.strip()


def status_text(service: str = SERVICE) -> str:
    return show(service, "StatusText") or "-"


def show(service: str, prop: str) -> str:
    proc = subprocess.run(["systemctl", "show", "-P", prop, f"{service}.service"],
                          capture_output=True, text=True, check=False,
                          timeout=SYSTEMCTL_TIMEOUT_S)
    return proc.stdout.strip()


def health_status(url: str) -> str:
    """The HTTP status ``url`` answers with ("200", "503", ...), or "no answer"."""
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError):
        return "no answer"
