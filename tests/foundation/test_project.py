""".ci/run installs every Debian package whose command `make test` runs."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = ROOT / ".ci" / "run"

# Commands the Makefile and the product (exercised by the tests) run that no
# test names as a literal: the venv, the llama-cpp-python source build
# (scikit-build-core drives cmake and a C++ compiler), lint, audio, the sandbox.
MAKE_AND_PRODUCT_COMMANDS = ("make", "python3", "g++", "cmake", "shellcheck", "arecord",
                             "aplay", "bwrap", "espeak-ng")
# `python3 -m venv` needs ensurepip, which Debian ships separately.
MAKE_PACKAGES = ("python3-venv",)
# Where Debian packages put programs (not /usr/local, not a pyenv shim).
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Functions whose first argument names a program.
_RUNNERS = {"run", "Popen", "check_call", "check_output", "call", "create_subprocess_exec",
            "which"}
_MODULES = {"subprocess", "asyncio", "shutil"}
_SHELL_WORDS = {"for", "do", "done", "if", "then", "else", "fi", "while", "cd", "echo",
                "test", "true", "false", "exit"}


def ci_packages() -> set[str]:
    """The packages named in .ci/run's ``for pkg in ...; do`` list."""
    text = CI_RUN.read_text()
    m = re.search(r"for pkg in (.*?); do", text, re.S)
    assert m, ".ci/run has no `for pkg in ...; do` package list"
    return set(m.group(1).replace("\\\n", " ").split())


def commands_named_by_tests() -> set[str]:
    """Program names the test sources run: argv literals, which(), /usr/bin/X paths."""
    found: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                fn = node.func
                first = node.args[0]
                if (isinstance(fn, ast.Attribute) and fn.attr in _RUNNERS
                        and isinstance(fn.value, ast.Name) and fn.value.id in _MODULES):
                    if isinstance(first, ast.List) and first.elts:
                        first = first.elts[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        found.add(first.value)
            if isinstance(node, ast.List) and node.elts:
                head = node.elts[0]
                # argv lists built before the call: ["ip", "netns", ...]
                if (isinstance(head, ast.Constant) and isinstance(head.value, str)
                        and len(node.elts) > 1 and re.fullmatch(r"[a-z][a-z0-9+.-]*", head.value)
                        and shutil.which(head.value, path=DEBIAN_PATH)):
                    found.add(head.value)
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and re.fullmatch(r"/usr/s?bin/[a-z0-9+.-]+", node.value)):
                found.add(node.value.rsplit("/", 1)[1])
    return {c for c in found if "/" not in c and not c.endswith(".py")}


def commands_in_makefile() -> set[str]:
    """The program each Makefile recipe line starts with (variables and shell words aside)."""
    found = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        if not line.startswith("\t"):
            continue
        words = [w for w in line.strip().lstrip("@").split() if "=" not in w]
        if (words and re.fullmatch(r"[a-z][a-z0-9+.-]*", words[0])
                and words[0] not in _SHELL_WORDS):
            found.add(words[0])
    return found


def packages_of(commands: set[str]) -> dict[str, str]:
    """The Debian package that ships each command on this box (dpkg's own answer)."""
    candidates: dict[str, list[str]] = {}
    for command in commands:
        exe = shutil.which(command, path=DEBIAN_PATH)
        assert exe, f"{command} is not installed from a Debian package on this box"
        paths = [exe, str(Path(exe).resolve())]
        # merged /usr: dpkg may know it as /bin/X or /sbin/X
        paths += [p.removeprefix("/usr") for p in paths if p.startswith("/usr/")]
        candidates[command] = paths
    every = sorted({p for paths in candidates.values() for p in paths})
    # One dpkg call for all paths (it is slow on a busy box); unknown paths only go to stderr.
    proc = subprocess.run(["dpkg-query", "-S", *every], capture_output=True, text=True,
                          check=False)
    owner = {}
    for line in proc.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    found = {}
    for command, paths in candidates.items():
        pkg = next((owner[p] for p in paths if p in owner), None)
        assert pkg, f"dpkg knows no package for {command} ({paths})"
        found[command] = pkg
    return found


def depends_of(packages: set[str]) -> set[str]:
    """What the listed packages pull in directly (Depends, Pre-Depends), by name."""
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}\n",
                           *sorted(packages)], capture_output=True, text=True, check=False)
    names = set()
    for alternative in re.split(r"[,|\n]", proc.stdout):
        word = alternative.strip().split(" ")[0].split(":")[0]
        if word:
            names.add(word)
    return names


def essential(packages: set[str]) -> set[str]:
    """Those of ``packages`` that Debian marks Essential (always installed)."""
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Essential}\n",
                           *sorted(packages)], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" yes")}


def test_ci_installs_every_package_the_tests_and_makefile_need():
    listed = ci_packages()
    covered = listed | depends_of(listed)  # python3 brings python3-minimal, and so on
    in_makefile = commands_in_makefile()
    assert {"mkdir", "touch", "shellcheck"} <= in_makefile, in_makefile
    commands = commands_named_by_tests() | in_makefile | set(MAKE_AND_PRODUCT_COMMANDS)
    # The scan must see the commands we know the suite runs, or it is blind.
    assert {"ip", "bridge", "nsenter", "systemd-nspawn", "debootstrap", "espeak-ng", "sox",
            "chromium", "chromedriver", "shellcheck"} <= commands, commands
    owners = packages_of(commands)
    always = essential(set(owners.values()))
    missing = {}
    for command, pkg in sorted(owners.items()):
        # g++ is a symlink into g++-12 and so on: the versioned package comes with the plain one.
        plain = re.sub(r"-\d+$", "", pkg)
        if pkg not in covered and plain not in covered and pkg not in always:
            missing[command] = pkg
    assert not missing, f".ci/run does not install {missing} (command: package)"
    assert set(MAKE_PACKAGES) <= listed, set(MAKE_PACKAGES) - listed


def test_every_package_ci_installs_is_a_real_debian_12_package():
    """A misspelt name would make .ci/run's apt-get fail on the fresh machine."""
    listed = sorted(ci_packages())
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *listed],
                          capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in proc.stdout.splitlines()
                 if line.endswith("install ok installed")}
    assert set(listed) <= installed, set(listed) - installed
    release = Path("/etc/os-release").read_text()
    assert "VERSION_CODENAME=bookworm" in release  # the CI target: names are Debian 12's


def test_ci_run_passes_shellcheck_and_calls_make_test():
    proc = subprocess.run(["shellcheck", str(CI_RUN)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout
    assert CI_RUN.read_text().rstrip().endswith("make test")
