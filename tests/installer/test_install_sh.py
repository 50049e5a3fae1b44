"""install.sh, the bash bootstrap: root, venv support through apt, refusals that change nothing.

Removing python3-venv from this box to test the apt path is not an option, so two
hand-written fakes stand in: FAKE_PYTHON3 (a Python whose venv support is missing) and
FAKE_APT_GET (records its arguments). Everything else is the real script under bash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO / "install.sh"
NOTHING_CHANGED = "Nothing was changed."

# A python3 that is new enough but lacks ensurepip/venv (Debian without python3-venv);
# handed the installer (`-m installer ...`) it only records the arguments.
FAKE_PYTHON3 = """#!/bin/sh
case "$*" in
  *version_info*) exit 0 ;;
  *ensurepip*) exit 1 ;;
  "-m installer"*) echo "$*" >> "{log}/installer.args"; exit 0 ;;
esac
echo "fake python3: unexpected $*" >&2
exit 99
"""
FAKE_APT_GET = """#!/bin/sh
echo "$*" >> "{log}/apt-get.args"
"""


def _fakes(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python3", FAKE_PYTHON3), ("apt-get", FAKE_APT_GET)):
        (bin_dir / name).write_text(text.format(log=tmp_path))
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{_fakes(tmp_path)}:/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(["bash", str(INSTALL_SH), *args], capture_output=True, text=True,
                          check=False, env=env, timeout=60)


def test_with_yes_python3_venv_is_installed_through_apt(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--yes", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "apt-get.args").read_text() == "install -y python3-venv\n"
    assert "installing python3-venv" in proc.stdout
    # ... and only then hands over to the Python installer, with the same arguments.
    assert (tmp_path / "installer.args").read_text() == "-m installer --yes --dry-run\n"


def test_without_yes_missing_venv_support_is_refused_naming_python3_venv(
        tmp_path: Path) -> None:
    proc = _run(tmp_path, "--dry-run")
    assert proc.returncode == 1
    assert "apt-get install python3-venv" in proc.stderr and "--yes" in proc.stderr
    assert proc.stderr.rstrip().endswith(NOTHING_CHANGED)
    assert not (tmp_path / "apt-get.args").exists()
    assert not (tmp_path / "installer.args").exists()


def test_without_root_it_refuses_and_says_run_it_with_sudo() -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv is missing (util-linux)"
    # A copy nobody can read wherever the checkout is (pytest's tmp_path is root's only).
    with tempfile.TemporaryDirectory(prefix="install-sh-") as where:
        os.chmod(where, 0o755)
        script = Path(where) / "install.sh"
        shutil.copy(INSTALL_SH, script)
        proc = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               "bash", str(script), "--yes"],
                              capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert "run it with sudo" in proc.stderr
    assert proc.stderr.rstrip().endswith(NOTHING_CHANGED)


def test_with_yes_but_no_apt_get_it_refuses_naming_python3_venv(tmp_path: Path) -> None:
    bin_dir = _fakes(tmp_path)
    (bin_dir / "apt-get").unlink()
    for tool in ("id", "dirname"):  # all install.sh needs besides python3: no /usr/bin
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run([bash, str(INSTALL_SH), "--yes"], capture_output=True, text=True,
                          check=False, env={"PATH": str(bin_dir)}, timeout=60)
    assert proc.returncode == 1
    assert "python3-venv" in proc.stderr and "no apt-get" in proc.stderr
    assert proc.stderr.rstrip().endswith(NOTHING_CHANGED)
    assert not (tmp_path / "installer.args").exists()
