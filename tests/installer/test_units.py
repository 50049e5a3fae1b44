"""units/hybrid-agent.service, directive by directive and section by section, and the
`systemd-analyze verify` gate (which prints, but still exits 0 on, an unknown key)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from installer import Paths

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "units" / "hybrid-agent.service"
TOOLS_UNIT = REPO / "units" / "hybrid-agent-tools.service"
TOOLS_SOCKET = REPO / "units" / "hybrid-agent-tools.socket"
SYSTEMD_UNITS = Path("/usr/lib/systemd/system")
Unit = dict[str, dict[str, list[str]]]

# [Service] directives the issue names, each with the one value it must have.
SERVICE_EXACT = {
    "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure",
    "User": "hybrid-agent", "Group": "hybrid-agent", "SupplementaryGroups": "audio",
    "StateDirectory": "hybrid-agent", "CacheDirectory": "hybrid-agent",
    "LogsDirectory": "hybrid-agent", "RuntimeDirectory": "hybrid-agent",
    "ConfigurationDirectory": "hybrid-agent",
    "EnvironmentFile": "-/etc/default/hybrid-agent",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "DevicePolicy": "closed",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
    "ProtectProc": "invisible", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "SystemCallArchitectures": "native",
    "UMask": "0077",
}
# PrivateDevices= hides /dev/snd and the GPUs; MemoryDenyWriteExecute= breaks Whisper
# (CTranslate2's oneDNN JIT, docs/operations.md); the others are newer than systemd 252.
SERVICE_ABSENT = ("PrivateDevices", "MemoryDenyWriteExecute", "RestartSteps",
                  "RestartMaxDelaySec")


def parse_unit(text: str) -> Unit:
    """Section -> directive -> every value it is given, in order (repeats kept)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"directive before any section: {line!r}"
        assert not line.endswith("\\"), f"continued line, not parsed here: {line!r}"
        key, eq, value = line.partition("=")
        assert eq, f"not a directive: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text())


def _seconds(value: str) -> int:
    assert value.isdigit(), f"{value!r}: write plain seconds"
    return int(value)


def test_the_unit_has_exactly_its_three_sections(unit: Unit) -> None:
    assert list(unit) == ["Unit", "Service", "Install"]
    assert unit["Install"] == {"WantedBy": ["multi-user.target"]}


def test_unit_section_orders_after_the_network_and_bounds_restarts(unit: Unit) -> None:
    u = unit["Unit"]
    assert u["Wants"] == ["network-online.target"]
    assert u["After"] == ["network-online.target"]
    # In [Unit]: systemd 252 ignores (with a warning) StartLimit* in [Service].
    assert _seconds(u["StartLimitIntervalSec"][0]) > 0 and _seconds(u["StartLimitBurst"][0]) > 1
    assert "StartLimitIntervalSec" not in unit["Service"]
    assert "StartLimitBurst" not in unit["Service"]


@pytest.mark.parametrize("key", sorted(SERVICE_EXACT))
def test_service_directive_has_its_value(unit: Unit, key: str) -> None:
    assert unit["Service"].get(key) == [SERVICE_EXACT[key]], key


@pytest.mark.parametrize("key", SERVICE_ABSENT)
def test_service_directive_is_absent(unit: Unit, key: str) -> None:
    assert key not in unit["Service"]


def test_exec_start_runs_the_installed_command_on_the_installed_config(unit: Unit) -> None:
    paths = Paths()
    assert unit["Service"]["ExecStart"] == [f"{paths.command} run --config {paths.config}"]


def test_watchdog_and_start_timeouts(unit: Unit) -> None:
    s = unit["Service"]
    watchdog = _seconds(s["WatchdogSec"][0])
    start = _seconds(s["TimeoutStartSec"][0])
    assert watchdog > 0
    # The start timeout only has to cover the daemon up to its first EXTEND_TIMEOUT_USEC
    # (the daemon extends it per component while models load), not the whole load.
    assert start >= 2 * watchdog


def test_devices_allow_alsa_and_gpus(unit: Unit) -> None:
    allowed = {v.split()[0]: v.split()[1] for v in unit["Service"]["DeviceAllow"]}
    for device in ("char-alsa", "/dev/snd", "char-drm", "/dev/nvidiactl",
                   "char-nvidia-frontend"):
        assert allowed.get(device) == "rw", device


def test_address_families_are_exactly_unix_inet_inet6_netlink(unit: Unit) -> None:
    [families] = unit["Service"]["RestrictAddressFamilies"]
    assert sorted(families.split()) == ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]


def test_system_calls_start_from_the_system_service_set(unit: Unit) -> None:
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert all(f.startswith("~") for f in filters[1:]), "later lines may only take away"


# ---------------------------------------------------------------- systemd-analyze verify


def _verify(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` of ``text`` as /etc/systemd/system/``name`` in a root that
    also holds the distribution's units and the installed command (verify checks both)."""
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing (apt-get install systemd)"
    root = tmp_path / "root"
    shutil.copytree(SYSTEMD_UNITS, root / str(SYSTEMD_UNITS).lstrip("/"), symlinks=True)
    command = root / str(Paths().command).lstrip("/")
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for other in (UNIT, TOOLS_UNIT, TOOLS_SOCKET):  # units that name each other
        shutil.copy(other, unit_dir / other.name)
    (unit_dir / name).write_text(text)
    return subprocess.run([exe, "verify", "--man=no", f"--root={root}", name],
                          capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("path", [UNIT, TOOLS_UNIT, TOOLS_SOCKET], ids=lambda p: p.name)
def test_systemd_analyze_verify_is_clean(tmp_path: Path, path: Path) -> None:
    proc = _verify(tmp_path, path.name, path.read_text())
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_the_verify_gate_catches_a_misspelled_directive(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict")
    proc = _verify(tmp_path, UNIT.name, text)
    assert "Unknown key 'ProtectSystm'" in proc.stdout + proc.stderr
