"""Options + Facts -> Plan: what the install will do, checked before anything changes.

:func:`make_plan` is pure: it raises :class:`PreflightError` for a box the
install cannot work on (so nothing is touched) and otherwise returns a
:class:`Plan` whose :meth:`Plan.describe` is what the user reads first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance import tiers
from installer import USER, Paths, PreflightError
from installer.detect import LLM_PACKAGE, PACKAGE, Facts

MIN_PYTHON = (3, 11)
DEFAULT_PORT = 8700
SYSTEMD_OK = ("running", "degraded")
# The default models (appliance.models.DEFAULT_MODELS; a test keeps these in step).
# The installer runs before the venv with PyYAML exists, so it cannot import that module.
MODEL_SIZES = {"stt": ("whisper-base", 150_218_479), "tts": ("en_US-joe-medium", 63_206_088),
               "llm": ("SmolLM2-135M-Instruct", 98_362_432)}
# What the venv takes on disk per tier, measured, with headroom.
VENV_BYTES = {"edge": 900 * 10**6, "mid": 1000 * 10**6, "core": 1000 * 10**6}
# Fetching stages a model next to its final place before the swap.
FETCH_FACTOR = 2
GPU_GROUPS = ("render", "video")
# CTranslate2 and onnxruntime publish wheels for these only (32-bit ARM has none).
SUPPORTED_ARCHES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class Options:
    """The command line of install.sh."""

    tier: str | None = None
    port: int | None = None
    yes: bool = False
    wheelhouse: Path | None = None
    """Install from these wheels only, no index (offline boxes)."""
    find_links: tuple[Path, ...] = ()
    """Extra local wheel dirs on top of the index (a prebuilt llama-cpp-python)."""
    dry_run: bool = False
    join: str | None = None
    uninstall: bool = False
    purge: bool = False
    debs: Path | None = None
    """A release directory holding .deb files (default: the checkout's dist/)."""
    no_deb: bool = False
    """Build the venv even where a package for this box exists."""


@dataclass(frozen=True)
class Plan:
    """What apply will do."""

    tier: str
    tier_reason: str
    port: int
    extras: tuple[str, ...]
    roles: tuple[str, ...]
    extra_groups: tuple[str, ...]
    paths: Paths
    options: Options
    upgrade: bool
    """A previous install exists: re-run in place."""
    tools_unit: bool = False
    """Install hybrid-agent-tools.service (tiers that serve tools: bubblewrap runs there)."""
    bwrap_missing: bool = False
    bwrap_via_apt: bool = False
    """Install the missing bubblewrap with apt-get (online installs with apt-get only)."""
    bwrap_appeared: bool = False
    """bubblewrap was missing at the last install and is there now: restart the tools."""
    debs: tuple[Path, ...] = ()
    """Install these Debian packages with apt-get instead of building the venv."""
    deb_note: str = ""
    """Why the venv path was taken although a package exists ("" otherwise)."""

    @property
    def models_bytes(self) -> int:
        return sum(MODEL_SIZES[r][1] for r in self.roles)

    def describe(self) -> str:
        """The plan as the user reads it before anything changes."""
        p = self.paths
        o = self.options
        source = (f"only the wheels in {o.wheelhouse} (no index)" if o.wheelhouse else
                  "the package index" + "".join(f" + {d}" for d in o.find_links))
        lines = [
            f"hybrid-agent install plan ({'upgrade in place' if self.upgrade else 'fresh'})",
            f"  tier        {self.tier}: {self.tier_reason}",
        ]
        if self.debs:
            return "\n".join([*lines, *self._describe_debs()])
        lines += [
            f"  user        {USER} (system user and group, from {p.sysusers}; "
            f"groups audio{''.join(', ' + g for g in self.extra_groups)})",
            f"  python      {p.venv} with hybrid-agent[{','.join(self.extras)}] from {source}",
        ]
        if "llm" in self.extras:
            lines.append("              llama-cpp-python compiles from source unless a wheel is "
                         "at hand: that takes minutes (pip shows progress)")
        lines += [
            f"  config      {p.config} (kept if you edited it; new defaults then go to "
            "config.yaml.new)",
            f"  directories {p.opt}, {p.etc}, {p.state}, {p.cache}, {p.logs}",
            f"  command     {p.command_link} -> {p.command} (a file there that is not a "
            "symlink is kept)",
            f"  models      under {p.models}, verified by SHA-256:",
        ]
        for role in self.roles:
            name, size = MODEL_SIZES[role]
            lines.append(f"                {role:<4} {name:<24} {size / 1e6:5.0f} MB")
        lines += [
            f"  cluster key {p.cluster_key}" + (" (written from the join code)" if o.join else
                                                 " (created if absent)"),
            f"  units       {p.unit}, {p.sysusers}, {p.tmpfiles}; enabled and started",
        ]
        if self.tools_unit:
            lines.append(f"              {p.tools_unit} (shell and python tools in bubblewrap) "
                         f"and {p.tools_socket.name}")
        if self.tools_unit and self.bwrap_via_apt:
            lines.append("  packages    bubblewrap, with apt-get (the shell and python tools "
                         "run in it)")
        elif self.tools_unit and self.bwrap_missing:
            lines.append("              bubblewrap is missing: the shell and python tools stay "
                         "off until `apt-get install bubblewrap`" +
                         (" (an offline install leaves apt alone)" if o.wheelhouse else ""))
        if self.deb_note:
            lines.append(f"  note        {self.deb_note}")
        lines += [
            f"  web         http://<this box>:{self.port}/",
        ]
        return "\n".join(lines)

    def _describe_debs(self) -> list[str]:
        p = self.paths
        names = ", ".join(d.name for d in self.debs)
        lines = [f"  packages    {names} with apt-get: dpkg tracks every file "
                 "(apt upgrade, dpkg -V, apt purge)"]
        if self.upgrade and p.record.exists():
            lines.append(f"              replaces the venv install in {p.opt} (config, "
                         "cluster key, state and models are kept)")
        lines += [
            f"  config      {p.config} (kept if you edited it; new defaults then go to "
            "config.yaml.new)",
            f"  models      under {p.models}, verified by SHA-256: "
            + ", ".join(MODEL_SIZES[r][0] for r in self.roles),
            f"  web         http://<this box>:{self.port}/",
        ]
        return lines


def make_plan(options: Options, facts: Facts) -> Plan:
    """Check the box and decide; PreflightError when the install cannot work here."""
    if not facts.is_root:
        raise PreflightError("the installer changes system files: run it with sudo")
    if facts.python[:2] < MIN_PYTHON:
        have = ".".join(map(str, facts.python))
        raise PreflightError(f"Python {have} is too old: hybrid-agent needs Python "
                             f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (Debian 12 has 3.11)")
    if facts.systemd_state not in SYSTEMD_OK:
        state = facts.systemd_state or "not running as PID 1"
        raise PreflightError(
            f"systemd is {state}, so there is no service to install. Without systemd run "
            "the daemon in the foreground instead: pip install this directory into a venv "
            "and run `hybrid-agent run` (see docs/operations.md)")
    if facts.hardware.arch not in SUPPORTED_ARCHES:
        raise PreflightError(
            f"this is a {facts.hardware.arch} box: hybrid-agent needs a 64-bit x86_64 or "
            "aarch64 one. Its speech engines, CTranslate2 (faster-whisper) and onnxruntime "
            f"(piper), publish no wheels for {facts.hardware.arch}"
            + (" (32-bit ARM). On a Raspberry Pi 3, 4 or 5 install the 64-bit Raspberry Pi "
               "OS (bookworm, arm64)" if facts.hardware.arch.startswith("arm") else ""))
    if options.wheelhouse is None and facts.network:
        raise PreflightError(f"no network: {facts.network}. Install offline with "
                             "--wheelhouse DIR (how to build one: docs/operations.md)")
    if options.wheelhouse is not None and not options.wheelhouse.is_dir():
        raise PreflightError(f"--wheelhouse {options.wheelhouse} is not a directory")
    for d in options.find_links:
        if not d.is_dir():
            raise PreflightError(f"--find-links {d} is not a directory")

    record = facts.record
    tier, reason = _tier(options, facts)
    port = options.port or _int(record.get("port")) or facts.existing_port or DEFAULT_PORT
    if facts.port_busy.get(port, False):
        raise PreflightError(f"port {port} is already in use by another program: stop it or "
                             "choose another with --port N")
    roles = ("stt", "tts", "llm") if tiers.runs_llm(tier) else ("stt", "tts")
    tools_unit = bool(tiers.tier_overrides(tier).get("tools", {}).get("serve"))
    debs, deb_note = _packages(options, facts, tier)
    if facts.dpkg_version and not debs:
        raise PreflightError(
            f"hybrid-agent {facts.dpkg_version} is installed as a Debian package: install "
            "a newer package (put it in dist/ or pass --debs DIR), or `apt-get remove "
            "hybrid-agent` before installing from source"
            + (f" ({deb_note})" if deb_note else ""))
    plan = Plan(tier=tier, tier_reason=reason, port=port, extras=tuple(tiers.EXTRAS[tier]),
                roles=roles, extra_groups=tuple(g for g in GPU_GROUPS if g in facts.groups),
                paths=facts.paths, options=options, upgrade=bool(record),
                tools_unit=tools_unit, bwrap_missing=not facts.bwrap,
                bwrap_via_apt=(tools_unit and not facts.bwrap and facts.apt_get
                               and options.wheelhouse is None),
                bwrap_appeared=tools_unit and facts.bwrap and record.get("bwrap") is False,
                debs=debs, deb_note=deb_note)
    _check_disk(plan, facts)
    return plan


def _packages(options: Options, facts: Facts, tier: str) -> tuple[tuple[Path, ...], str]:
    """The .deb files to install (none: the venv path) and, when a package was passed over,
    why."""
    if options.no_deb or not facts.debs:
        return (), ""
    main = facts.debs.get(PACKAGE)
    if main is None:
        return (), f"no {PACKAGE} package for this architecture among the .deb files"
    if not tiers.runs_llm(tier):
        return (main,), ""
    llm = facts.debs.get(LLM_PACKAGE)
    if llm is None:
        return (), (f"the {tier} tier needs {LLM_PACKAGE}, and there is no such package for "
                    "this architecture: building the venv instead")
    return (main, llm), ""


def _tier(options: Options, facts: Facts) -> tuple[str, str]:
    if options.tier:
        return options.tier, f"chosen with --tier (detection says {facts.detected.tier}: " \
                             f"{facts.detected.reason})"
    previous = facts.record.get("tier")
    if isinstance(previous, str) and previous in tiers.EXTRAS:
        return previous, "kept from the last install (change it with --tier)"
    return facts.detected.tier, facts.detected.reason


def _check_disk(plan: Plan, facts: Facts) -> None:
    need = {str(plan.paths.opt): VENV_BYTES[plan.tier],
            str(plan.paths.state): FETCH_FACTOR * plan.models_bytes}
    for where, want in need.items():
        free = facts.disk_free.get(where)
        if free is not None and free < want:
            raise PreflightError(f"disk full: {where} needs about {want / 1e6:.0f} MB free, "
                                 f"the filesystem has {free / 1e6:.0f} MB; free some space "
                                 "and run the installer again")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
