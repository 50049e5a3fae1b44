"""`hybrid-agent doctor`: checks of the box, each OK / WARN / FAIL with a fix."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import config as config_mod

MIN_PYTHON = (3, 11)
MIN_FREE_DISK_BYTES = 2 * 1024**3
WARN_FREE_DISK_BYTES = 5 * 1024**3
# The clock must not be before this release was made (2026-01-01 UTC).
EARLIEST_SANE_TIME = 1767225600
COMMAND_TIMEOUT_S = 5.0
MAX_DAEMON_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report."""

    name: str
    level: str  # OK, WARN or FAIL
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "level": self.level, "message": self.message,
                "fix": self.fix}

    def line(self) -> str:
        text = f"{self.level:<4}  {self.name:<10} {self.message}"
        if self.fix and self.level != "OK":
            text += f"\n      fix: {self.fix}"
        return text


def run_checks(config_path: Path | None = None) -> list[CheckResult]:
    """Run every check; a check that crashes is reported as FAIL, not raised."""
    results: list[CheckResult] = []
    cfg: config_mod.Config | None = None
    checks: list[Callable[[], CheckResult]] = [check_python, check_systemd, check_cpu]
    for check in checks:
        results.append(_safe(check.__name__, check))
    try:
        cfg = config_mod.load(config_path)
        results.append(CheckResult("config", "OK", f"{cfg.source} is valid ({cfg.tier} tier)"))
    except config_mod.ConfigError as exc:
        results.append(CheckResult("config", "FAIL", str(exc),
                                   "edit the file; 'hybrid-agent config check FILE' explains"))
    if cfg is not None:
        c = cfg
        results.append(_safe("port", lambda: check_port(c)))
        results.append(_safe("unit cpu", lambda: check_service_cpu(c)))
        results.extend(_safe_many("models", lambda: check_models(c)))
        results.append(_safe("disk", lambda: check_disk(Path(c.node.state_dir))))
        results.append(_safe("key", lambda: check_key(Path(c.security.cluster_key_file))))
        results.append(_safe("world", lambda: check_world(c)))
        if c.llm.rpc_serve or c.llm.rpc_workers:
            results.append(_safe("rpc", check_rpc))
    results.append(_safe("sound", check_sound))
    results.append(_safe("clock", check_clock))
    return results


def check_python() -> CheckResult:
    v = sys.version_info
    text = f"Python {v.major}.{v.minor}.{v.micro}"
    if (v.major, v.minor) < MIN_PYTHON:
        return CheckResult("python", "FAIL", f"{text} is too old",
                           "install Python 3.11 or newer (Debian 12 has it)")
    return CheckResult("python", "OK", text)


def check_systemd() -> CheckResult:
    if not Path("/run/systemd/system").is_dir():
        return CheckResult("systemd", "WARN", "systemd is not running as init on this box",
                           "the service needs systemd; 'hybrid-agent run' works in the "
                           "foreground")
    out = _run(["systemctl", "is-system-running"])
    state = (out or "unknown").strip()
    if state in ("running", "degraded"):
        return CheckResult("systemd", "OK", f"systemd is {state}")
    return CheckResult("systemd", "WARN", f"systemd reports {state!r}",
                       "see 'systemctl --failed'")


def check_cpu() -> CheckResult:
    """The CPU features as this command reads them (what the libraries choose kernels by)."""
    from appliance import hardware

    cpu = hardware.cpu_features()
    if cpu.problem:
        return CheckResult("cpu", "WARN", cpu.summary(),
                           "run the doctor outside a sandbox that hides /proc/cpuinfo")
    return CheckResult("cpu", "OK", cpu.summary())


def check_service_cpu(cfg: config_mod.Config) -> CheckResult:
    """The CPU features as the running daemon reads them inside its unit."""
    status = _daemon_json(cfg.http.port, "/api/status")
    if status is None:
        return CheckResult("unit cpu", "OK", f"no daemon answers on port {cfg.http.port} "
                           "to ask what it sees")
    cpu = status.get("cpu")
    if not isinstance(cpu, dict):
        return CheckResult("unit cpu", "WARN", "the daemon does not say what it sees of "
                           "the CPU", "upgrade it")
    summary = str(cpu.get("summary", ""))[:300]
    if cpu.get("problem"):
        return CheckResult("unit cpu", "WARN", f"the service sees {summary}",
                           "its unit hides /proc/cpuinfo or the sysfs CPU topology "
                           "(ProcSubset=pid?): `systemctl cat hybrid-agent` shows the "
                           "unit and its drop-ins; the shipped unit has ProcSubset=all")
    return CheckResult("unit cpu", "OK", f"the service sees {summary}")


def check_port(cfg: config_mod.Config) -> CheckResult:
    port = cfg.http.port
    ours = _our_daemon_on(port)
    if ours:
        return CheckResult("port", "OK", f"port {port} is served by hybrid-agent ({ours})")
    host = cfg.http.host
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        return CheckResult("port", "FAIL", f"port {port} on {host} is taken by another "
                           f"program ({exc.strerror})",
                           f"stop it (ss -ltnp 'sport = :{port}') or set http.port")
    return CheckResult("port", "OK", f"port {port} is free")


def check_models(cfg: config_mod.Config) -> list[CheckResult]:
    """Doctor lines for the models this config uses (default ones verified by hash)."""
    try:
        from appliance import models
    except ImportError:
        return [CheckResult("models", "WARN", "model management is not installed")]
    out: list[CheckResult] = []
    wanted: list[tuple[str, Path, bool]] = []
    if cfg.voice.enabled:
        wanted.append(("stt", cfg.stt_model_path, not cfg.voice.stt_model))
        wanted.append(("tts", cfg.tts_voice_path, not cfg.voice.tts_voice))
    if cfg.llm.mode in ("local", "auto"):
        wanted.append(("llm", cfg.llm_model_path, not cfg.llm.model))
    for role, path, is_default in wanted:
        if is_default:
            r = models.verify(cfg.node.models_path, role)
            out.append(CheckResult(f"model:{role}", "OK" if r.ok else "FAIL", r.message,
                                   f"sudo hybrid-agent models fetch --role {role}"))
        elif path.exists():
            out.append(CheckResult(f"model:{role}", "OK", f"{path} exists (not hash-checked: "
                                                          "not a default model)"))
        else:
            out.append(CheckResult(f"model:{role}", "FAIL", f"{path} does not exist",
                                   "fix the path in the config"))
    return out


def check_disk(path: Path) -> CheckResult:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_gib = usage.free / 1024**3
    if usage.free < MIN_FREE_DISK_BYTES:
        return CheckResult("disk", "FAIL", f"{free_gib:.1f} GiB free under {probe}",
                           "free at least 2 GiB for models and state")
    if usage.free < WARN_FREE_DISK_BYTES:
        return CheckResult("disk", "WARN", f"{free_gib:.1f} GiB free under {probe}",
                           "larger models need more room")
    return CheckResult("disk", "OK", f"{free_gib:.1f} GiB free under {probe}")


def check_key(path: Path) -> CheckResult:
    """The cluster key file: present, and readable by the service alone."""
    from appliance.security.keys import mode_problem

    try:
        st = path.stat()
    except FileNotFoundError:
        return CheckResult("key", "WARN", f"no cluster key at {path}: this box works alone",
                           "hybrid-agent pair --init (first box) or hybrid-agent join CODE")
    except OSError as exc:
        return CheckResult("key", "FAIL", f"cannot look at {path}: {exc.strerror or exc}",
                           "run doctor with sudo")
    problem = mode_problem(st.st_mode, path)
    if problem:
        return CheckResult("key", "FAIL", problem, f"chmod 600 {path}")
    return CheckResult("key", "OK", f"{path} is readable by its owner only")
def check_world(cfg: config_mod.Config) -> CheckResult:
    """Damaged world-journal data the daemon set aside at a start (appliance.world.journal)."""
    from appliance.world.journal import DAMAGED_SUFFIX
    from appliance.world.store import WORLD_DIR

    if cfg.world.mode != "local":
        return CheckResult("world", "OK", f"the world model is {cfg.world.mode} here")
    directory = cfg.node.state_path / WORLD_DIR
    aside = sorted(p.name for p in directory.glob(f"*{DAMAGED_SUFFIX}*")) \
        if directory.is_dir() else []
    if aside:
        return CheckResult("world", "WARN", f"damaged world data was set aside in {directory}: "
                                            f"{', '.join(aside[:3])}"
                                            + (f" and {len(aside) - 3} more" if len(aside) > 3
                                               else ""),
                           "see docs/operations.md, 'A damaged world journal'; remove the file "
                           "once dealt with")
    return CheckResult("world", "OK", f"no damaged world data under {directory}")


def check_sound() -> CheckResult:
    if shutil.which("arecord") is None:
        return CheckResult("sound", "WARN", "arecord not found (alsa-utils)",
                           "apt-get install alsa-utils; voice in the browser works without it")
    out = _run(["arecord", "-l"]) or ""
    cards = [line for line in out.splitlines() if line.startswith("card ")]
    if not cards:
        return CheckResult("sound", "WARN", "no capture device found",
                           "plug in a microphone, or talk through the web page")
    return CheckResult("sound", "OK", f"{len(cards)} capture device(s): {cards[0][:60]}")


def check_rpc() -> CheckResult:
    """A box that lends memory or splits a model needs llama.cpp's RPC backend."""
    from appliance.llm.rpc import ggml

    try:
        ggml.rpc_registry()
    except ImportError:
        return CheckResult("rpc", "FAIL", "llama-cpp-python is not installed (the llm extra)",
                           "re-run install.sh with --tier mid or core")
    except ggml.RpcUnavailable:
        return CheckResult("rpc", "FAIL", "llama-cpp-python has no RPC backend",
                           ggml.REBUILD_HINT)
    return CheckResult("rpc", "OK", "llama.cpp's RPC backend is built in (docs/rpc.md)")


def check_clock() -> CheckResult:
    now = time.time()
    if now < EARLIEST_SANE_TIME:
        return CheckResult("clock", "FAIL", f"the clock says {time.ctime(now)}",
                           "enable time sync: timedatectl set-ntp true")
    synced = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if synced is not None and synced.strip() == "no":
        return CheckResult("clock", "WARN", "the clock is not synchronised",
                           "timedatectl set-ntp true; signed requests need clocks within 60 s")
    return CheckResult("clock", "OK", time.strftime("%Y-%m-%d %H:%M:%S %Z"))


# ---------------------------------------------------------------- helpers


def _daemon_json(port: int, path: str) -> dict[str, object] | None:
    """The JSON object a daemon on ``port`` answers at ``path`` (error answers too), or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as r:
            data = json.loads(r.read(MAX_DAEMON_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        try:
            data = json.loads(exc.read(MAX_DAEMON_ANSWER_BYTES))
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _our_daemon_on(port: int) -> str:
    data = _daemon_json(port, "/health")
    if data is not None and "tier" in data and "ready" in data:
        return f"{data.get('name')}, {'ready' if data.get('ready') else data.get('phase')}"
    return ""


def _run(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout


def _safe(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as exc:  # a broken check must not hide the others
        return CheckResult(name.removeprefix("check_"), "FAIL", f"check crashed: {exc}")


def _safe_many(name: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    try:
        return check()
    except Exception as exc:
        return [CheckResult(name, "FAIL", f"check crashed: {exc}")]
