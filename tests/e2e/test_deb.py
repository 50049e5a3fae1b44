"""The Debian packages (`make deb`) on a fresh Debian 12 box with real systemd.

One container for the module, the tests in order: the packages as built
(lintian, contents), `apt-get install` of hybrid-agent (edge), the unit seeing
the CPU (issue 21), hybrid-agent-llm making a mid box and its removal, an
upgrade that keeps the user's edits, remove, purge, and install.sh choosing
the packages by itself.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.e2e import packages
from tests.e2e.conftest import SRC_INSIDE, WHEELHOUSE_INSIDE, wait_until
from tests.e2e.container import Container
from tests.e2e.service import USER_EDIT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

DEBS_INSIDE = "/srv/debs"
SERVICE = "hybrid-agent"
PORT = 8700
CONFIG = "/etc/hybrid-agent/config.yaml"
DEFAULT_FILE = "/etc/default/hybrid-agent"
MAX_EXPOSURE = 2.0
READY_TIMEOUT_S = 240
# What onnxruntime's cpuinfo library prints when /proc/cpuinfo is hidden (issue 21).
CPU_WARNINGS = ("Error in cpuinfo", "cpuinfo_initialize failed", "Unknown CPU vendor",
                "Failed to initialize PyTorch cpuinfo")
APT = "DEBIAN_FRONTEND=noninteractive apt-get -y"
WITH_WHEELHOUSE = f"HYBRID_AGENT_WHEELHOUSE={WHEELHOUSE_INSIDE}"
# Paths that change on any box as packages come and go: dpkg's and apt's own records,
# logs, the journal, systemd's run-time state.
BOOKKEEPING = ("/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/apt/", "/var/cache/debconf/",
               "/var/log/", "/var/lib/systemd/catalog/", "/var/cache/ldconfig/",
               "/etc/ld.so.cache", "/var/lib/systemd/timesync/", "/var/lib/systemd/random-seed")
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def debs() -> Path:
    t0 = time.monotonic()
    built = packages.built("amd64", llm=True)
    TIMINGS["build_or_cache_s"] = round(time.monotonic() - t0, 1)
    return built


@pytest.fixture(scope="module")
def box(container_factory, debs: Path) -> Container:
    return container_factory("ha-e2e-deb", binds_ro={str(debs): DEBS_INSIDE})


@pytest.fixture(scope="module")
def before(box: Container) -> set[str]:
    """Every path of the fresh box, to compare with after the purge."""
    return _tree(box)


def show(box: Container, prop: str, unit: str = "hybrid-agent") -> str:
    return box.sh(f"systemctl show -P {prop} {unit}").out.strip()


def ready(box: Container) -> bool:
    r = box.sh(f"curl -fsS -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{PORT}/health")
    return show(box, "ActiveState") == "active" and r.out.strip() == "200"


def wait_ready(box: Container, what: str) -> None:
    wait_until(lambda: ready(box), READY_TIMEOUT_S, f"hybrid-agent ready {what}")


def install(box: Container, *names: str, env: str = "") -> str:
    files = " ".join(f"{DEBS_INSIDE}/{n}" if "/" not in n else n for n in names)
    r = box.sh(f"{env} {APT} install {files}", timeout=900)
    assert r.rc == 0, r.text[-5000:]
    return r.out


def dpkg_verify_clean(box: Container, *pkgs: str) -> None:
    for pkg in pkgs:
        r = box.sh(f"dpkg -V {pkg}")
        assert r.rc == 0 and not r.out.strip(), f"dpkg -V {pkg}:\n{r.text[-3000:]}"


# ---------------------------------------------------------------- the packages as built


def test_lintian_pedantic_reports_no_error(debs: Path) -> None:
    report = (debs / "lintian.txt").read_text()
    errors = [line for line in report.splitlines() if line.startswith("E:")]
    assert not errors, "\n".join(errors)


def test_each_lintian_override_says_why() -> None:
    overrides = sorted((packages.REPO / "packaging" / "debian").glob("*lintian-overrides"))
    assert overrides, "no lintian overrides: then this test is not needed"
    for path in overrides:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                assert i > 0 and lines[i - 1].startswith("#"), \
                    f"{path.name}: override {line!r} has no comment above it saying why"


def test_the_packages_split_the_venv_and_ship_the_units(debs: Path) -> None:
    main = _contents(packages.deb(debs, "hybrid-agent"))
    llm = _contents(packages.deb(debs, "hybrid-agent-llm"))
    site = "./opt/hybrid-agent/venv/lib/python3.11/site-packages"
    for path in ("./lib/systemd/system/hybrid-agent.service",
                 "./usr/lib/sysusers.d/hybrid-agent.conf",
                 "./usr/lib/tmpfiles.d/hybrid-agent.conf", "./etc/default/hybrid-agent",
                 "./usr/bin/hybrid-agent", f"{site}/appliance/daemon.py",
                 f"{site}/installer/package.py", f"{site}/piper/__init__.py",
                 f"{site}/faster_whisper/__init__.py"):
        assert path in main, f"{path} not in hybrid-agent"
    assert f"{site}/llama_cpp/__init__.py" in llm
    assert "./lib/systemd/system/hybrid-agent-tools.service" in llm
    assert not [p for p in main if "/llama_cpp/" in p]
    files = {p for p in main | llm if not p.endswith("/")}
    assert len(files) == len({p for p in main if not p.endswith("/")}) + \
        len({p for p in llm if not p.endswith("/")}), "a file is in both packages"
    # Byte code ships with the code (the service cannot write it), hash-checked.
    assert f"{site}/appliance/__pycache__/daemon.cpython-311.pyc" in main


# ---------------------------------------------------------------- install


def test_apt_get_install_on_a_fresh_box_is_active_and_ready(box: Container, debs: Path,
                                                            before: set[str]) -> None:
    assert before  # the snapshot is taken before anything is installed
    for compiler in ("cc", "gcc", "c++", "g++"):
        assert box.sh(f"command -v {compiler}").rc != 0, f"{compiler} is in the box"
    t0 = time.monotonic()
    out = install(box, packages.deb(debs, "hybrid-agent").name, env=WITH_WHEELHOUSE)
    TIMINGS["apt_install_edge_s"] = round(time.monotonic() - t0, 1)
    assert "hybrid-agent: tier edge:" in out, out[-3000:]
    for model in ("whisper-base", "en_US-joe-medium"):
        assert f"{model} verified and placed" in out, out[-3000:]
    assert "join other boxes with: sudo ./install.sh --join HA1-" in out
    wait_ready(box, "after apt-get install")
    text = show(box, "StatusText")
    assert text.startswith("edge: ready"), text
    status = box.sh("systemctl status --no-pager hybrid-agent").out
    assert "active (running)" in status and f'Status: "{text}"' in status, status
    assert "/lib/systemd/system/hybrid-agent.service; enabled" in status, status


def test_dpkg_verifies_every_file_it_installed(box: Container) -> None:
    dpkg_verify_clean(box, "hybrid-agent")
    # The service ran and was asked about; it wrote nothing into its package files.
    assert box.sh("find /opt/hybrid-agent -newer /var/lib/dpkg/info/hybrid-agent.list "
                  "! -type d").out.strip() == ""


def test_the_box_is_set_up_like_install_sh_does(box: Container) -> None:
    pid = show(box, "MainPID")
    assert box.sh(f"ps -o user= -p {pid}").out.strip() == "hybrid-agent"
    key = box.sh("stat -c '%a %U %s' /etc/hybrid-agent/cluster.key").out.split()
    assert key == ["600", "hybrid-agent", "32"]
    assert box.sh(f"stat -c '%a %U %G' {CONFIG}").out.split() == ["640", "root", "hybrid-agent"]
    r = box.sh("hybrid-agent status")  # /usr/bin, from the package
    assert r.rc == 0 and "(edge tier," in r.out and "state     ready" in r.out, r.text
    assert box.sh("hybrid-agent config check /etc/hybrid-agent/config.yaml").rc == 0


def test_unit_exposure_is_at_most_2(box: Container) -> None:
    r = box.sh("systemd-analyze security --no-pager hybrid-agent.service")
    m = re.search(r"Overall exposure level for hybrid-agent.service: (\d+\.\d)", r.out)
    assert m, r.text[-2000:]
    TIMINGS["systemd_analyze_security"] = float(m.group(1))
    assert float(m.group(1)) <= MAX_EXPOSURE, r.out
    assert box.sh("systemd-analyze verify hybrid-agent.service").text.strip() == ""


# ---------------------------------------------------------------- issue 21: the CPU


def test_the_service_sees_the_cpu_features_its_libraries_need(box: Container) -> None:
    journal = _journal_since_start(box)
    assert "cpu: x86_64" in journal, journal[-3000:]
    for warning in CPU_WARNINGS:
        assert warning not in journal, f"{warning!r} in the journal:\n{journal[-3000:]}"
    status = json.loads(box.sh(f"curl -fsS http://127.0.0.1:{PORT}/api/status",
                               check=True).out)
    cpu = status["cpu"]
    host_flags = set(box.sh("grep -m1 '^flags' /proc/cpuinfo").out.split(":", 1)[1].split())
    assert cpu["problem"] == "" and cpu["notable"], cpu
    assert set(cpu["notable"]) <= host_flags and "avx2" in cpu["notable"], cpu
    doctor = box.sh("hybrid-agent doctor").out
    assert re.search(r"^OK\s+cpu\s+x86_64 .*avx2", doctor, re.M), doctor
    assert re.search(r"^OK\s+unit cpu\s+the service sees x86_64 .*avx2", doctor, re.M), doctor


def test_a_unit_hiding_proc_cpuinfo_is_caught(box: Container) -> None:
    # The unit as it was before issue 21: the same checks must see the difference.
    box.sh("mkdir -p /etc/systemd/system/hybrid-agent.service.d && printf '[Service]\\n"
           "ProcSubset=pid\\n' > /etc/systemd/system/hybrid-agent.service.d/cpu.conf && "
           "systemctl daemon-reload && systemctl restart hybrid-agent", check=True, timeout=300)
    try:
        wait_ready(box, "with ProcSubset=pid")
        journal = _journal_since_start(box)
        assert "Failed to initialize PyTorch cpuinfo" in journal, journal[-3000:]
        assert "cpu: x86_64: cannot read /proc/cpuinfo" in journal, journal[-3000:]
        doctor = box.sh("hybrid-agent doctor").out
        assert re.search(r"^WARN\s+unit cpu\s+the service sees x86_64: cannot read "
                         r"/proc/cpuinfo", doctor, re.M), doctor
        assert "ProcSubset=pid" in doctor
    finally:
        box.sh("rm -r /etc/systemd/system/hybrid-agent.service.d && systemctl daemon-reload "
               "&& systemctl restart hybrid-agent", timeout=300)
    wait_ready(box, "with the shipped unit again")


# ---------------------------------------------------------------- hybrid-agent-llm


def test_hybrid_agent_llm_makes_a_mid_box_with_its_tools(box: Container, debs: Path) -> None:
    invocation = show(box, "InvocationID")
    t0 = time.monotonic()
    out = install(box, packages.deb(debs, "hybrid-agent-llm").name,
                  env=f"{WITH_WHEELHOUSE} HYBRID_AGENT_TIER=mid")
    TIMINGS["apt_install_llm_s"] = round(time.monotonic() - t0, 1)
    assert "hybrid-agent: tier mid: asked for" in out, out[-3000:]
    assert "SmolLM2-135M-Instruct verified and placed" in out, out[-3000:]
    assert "restarting hybrid-agent" in out
    assert show(box, "InvocationID") != invocation
    wait_ready(box, "as a mid box")
    assert show(box, "StatusText").startswith("mid: ready"), show(box, "StatusText")
    assert "tier: mid" in box.root_path(CONFIG).read_text()
    # The tool server takes its listening socket from systemd (no network of its own).
    assert show(box, "ActiveState", "hybrid-agent-tools.socket") == "active"
    assert show(box, "ActiveState", "hybrid-agent-tools") == "active"
    dpkg_verify_clean(box, "hybrid-agent", "hybrid-agent-llm")


def test_removing_hybrid_agent_llm_makes_it_an_edge_again(box: Container) -> None:
    r = box.sh(f"{APT} remove hybrid-agent-llm", timeout=600)
    assert r.rc == 0, r.text[-3000:]
    assert "hybrid-agent-llm is not installed: edge until" in r.out, r.out[-3000:]
    wait_ready(box, "as an edge again")
    assert show(box, "StatusText").startswith("edge: ready")
    assert box.sh("systemctl cat hybrid-agent-tools").rc != 0
    assert box.sh("systemctl cat hybrid-agent-tools.socket").rc != 0
    assert box.sh("/opt/hybrid-agent/venv/bin/python -c 'import llama_cpp'").rc != 0
    dpkg_verify_clean(box, "hybrid-agent")


# ---------------------------------------------------------------- upgrade, remove, purge


def test_an_upgrade_keeps_the_users_edits_and_restarts_the_service(box: Container, debs: Path,
                                                                   tmp_path: Path) -> None:
    cfg, default = box.root_path(CONFIG), box.root_path(DEFAULT_FILE)
    edited = cfg.read_text().replace(*USER_EDIT)
    assert edited != cfg.read_text()
    cfg.write_text(edited)
    default.write_text(default.read_text() + "OMP_NUM_THREADS=2\n")
    newer = packages.with_version(packages.deb(debs, "hybrid-agent"), "0.1.0-2", tmp_path)
    newer_inside = f"/srv/{newer.name}"
    box.root_path(newer_inside).write_bytes(newer.read_bytes())
    pid, invocation = show(box, "MainPID"), show(box, "InvocationID")
    t0 = time.monotonic()
    out = install(box, newer_inside)
    TIMINGS["apt_upgrade_s"] = round(time.monotonic() - t0, 1)
    assert "Unpacking hybrid-agent (0.1.0-2) over (0.1.0-1)" in out, out[-3000:]
    wait_ready(box, "after the upgrade")
    assert show(box, "InvocationID") != invocation and show(box, "MainPID") != pid
    assert cfg.read_text() == edited
    assert not box.root_path(f"{CONFIG}.new").exists()  # the defaults did not change
    assert default.read_text().endswith("OMP_NUM_THREADS=2\n")
    assert box.sh("dpkg-query -W -f='${Version}' hybrid-agent").out == "0.1.0-2"
    # Every file as packaged, but the conffile the user edited (kept, and so flagged).
    verify = box.sh("dpkg -V hybrid-agent")
    assert verify.out.splitlines() == [f"??5?????? c {DEFAULT_FILE}"], verify.text


def test_remove_keeps_config_key_state_and_models(box: Container) -> None:
    r = box.sh(f"{APT} remove hybrid-agent", timeout=600)
    assert r.rc == 0, r.text[-3000:]
    for gone in ("/opt/hybrid-agent", "/lib/systemd/system/hybrid-agent.service",
                 f"/usr/bin/{SERVICE}"):
        assert not box.root_path(gone).exists(), f"{gone} left behind by remove"
    assert box.sh("systemctl is-active hybrid-agent").out.strip() != "active"
    for kept in (CONFIG, "/etc/hybrid-agent/cluster.key", "/var/lib/hybrid-agent/models/piper",
                 "/var/lib/hybrid-agent/models/whisper-base", DEFAULT_FILE):
        assert box.root_path(kept).exists(), f"{kept} not kept by remove"
    assert USER_EDIT[1] in box.root_path(CONFIG).read_text()
    assert "deinstall ok config-files" in box.sh(
        "dpkg-query -W -f='${Status}' hybrid-agent").out


def test_purge_leaves_no_file_directory_unit_or_user(box: Container, before: set[str]) -> None:
    # hybrid-agent-llm was removed above, not purged: its state (the tools unit's
    # enablement) goes with its own purge, as for any Debian package.
    r = box.sh(f"{APT} purge hybrid-agent hybrid-agent-llm", timeout=600)
    assert r.rc == 0, r.text[-3000:]
    assert box.sh("getent passwd hybrid-agent").rc != 0
    assert box.sh("getent group hybrid-agent").rc != 0
    units = box.sh("systemctl list-unit-files --no-legend 'hybrid-agent*'").out
    assert units.strip() == "", units
    left = sorted(p for p in _tree(box) - before if not p.startswith(BOOKKEEPING))
    assert not left, f"left behind by the purge: {left[:40]}"
    assert _installed_version(box) == ""


# ---------------------------------------------------------------- install.sh


def test_install_sh_installs_the_package_when_there_is_one(box: Container) -> None:
    cmd = f"{SRC_INSIDE}/install.sh --yes --debs {DEBS_INSIDE} --wheelhouse {WHEELHOUSE_INSIDE}"
    t0 = time.monotonic()
    r = box.sh(cmd, timeout=900)
    TIMINGS["install_sh_deb_s"] = round(time.monotonic() - t0, 1)
    assert r.rc == 0, r.text[-4000:]
    assert re.search(r"packages    hybrid-agent_\S+_amd64\.deb with apt-get", r.out), r.out
    assert "hybrid-agent is ready" in r.out and "Active: active (running)" in r.out
    assert "install ok installed" in box.sh("dpkg-query -W -f='${Status}' hybrid-agent").out
    assert not box.root_path("/opt/hybrid-agent/install.json").exists()
    dpkg_verify_clean(box, "hybrid-agent")
    invocation = show(box, "InvocationID")
    again = box.sh(cmd, timeout=900)
    assert again.rc == 0 and "nothing changed" in again.out, again.text[-3000:]
    assert show(box, "InvocationID") == invocation
    # A source install over the package would fight dpkg: refused, naming the way out.
    r = box.sh(f"{SRC_INSIDE}/install.sh --yes --no-deb --wheelhouse {WHEELHOUSE_INSIDE}")
    assert r.rc == 1 and "is installed as a Debian package" in r.err, r.text[-2000:]
    r = box.sh(f"{SRC_INSIDE}/install.sh --uninstall --purge", timeout=600)
    assert r.rc == 0, r.text[-3000:]
    assert _installed_version(box) == ""
    assert not box.root_path("/etc/hybrid-agent").exists()
    print(f"\ndeb e2e timings: {TIMINGS}")


# ---------------------------------------------------------------- helpers


def _contents(deb_file: Path) -> set[str]:
    import subprocess

    out = subprocess.run(["dpkg-deb", "--contents", str(deb_file)], capture_output=True,
                         text=True, check=True).stdout
    # "perms owner size date time ./path[ -> target]"
    return {line.split(None, 5)[5].split(" -> ")[0] for line in out.splitlines()}


def _tree(box: Container) -> set[str]:
    r = box.sh("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run "
               "-o -path /tmp -o -path /var/tmp -o -path /srv \\) -prune -o -print", timeout=300)
    return set(r.out.splitlines())


def _installed_version(box: Container) -> str:
    """The version dpkg has of hybrid-agent ("" once purged: dpkg may still know the name)."""
    return box.sh("dpkg-query -W -f='${Version}' hybrid-agent").out.strip()


def _journal_since_start(box: Container) -> str:
    invocation = show(box, "InvocationID")
    return box.sh(f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}").out
