"""The shell and python tools need bubblewrap: the plan installs it with apt-get where it can.

apt-get here is a hand-written STAND-IN on PATH (the real one would change this
box's own packages); tests/e2e/test_install_mid.py runs the real apt-get in a
Debian 12 container, from a local package repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.apply import Result, _bubblewrap
from installer.plan import Options, make_plan
from tests.installer.test_plan import facts

# STAND-IN apt-get: records each call and the frontend it was given; `install` fails
# until `update` ran (a fresh box has no package lists) unless ALWAYS_FAILS is set.
STAND_IN_APT_GET = """#!/bin/sh
verb=""
for a in "$@"; do case "$a" in install|update) verb="$a" ;; esac; done
echo "$verb DEBIAN_FRONTEND=$DEBIAN_FRONTEND stdin=$(readlink /proc/self/fd/0) $*" >> "{log}"
[ -e "{fail}" ] && {{ echo "E: Unable to locate package bubblewrap"; exit 100; }}
case "$verb" in
  update) touch "{lists}"; echo "E: Some index files failed to download"; exit 100 ;;
  install) [ -e "{lists}" ] || {{ echo "E: Unable to locate package bubblewrap"; exit 100; }}
           echo "Setting up bubblewrap (0.8.0-2+deb12u1) ..." ;;
esac
"""


@pytest.fixture
def apt_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "stand-in-bin"
    bin_dir.mkdir()
    log = tmp_path / "apt-get.calls"
    script = STAND_IN_APT_GET.format(log=log, lists=tmp_path / "lists",
                                     fail=tmp_path / "always-fails")
    (bin_dir / "apt-get").write_text(script)
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
    return log


def test_a_tools_tier_without_bubblewrap_plans_to_install_it(tmp_path: Path) -> None:
    plan = make_plan(Options(tier="mid"), facts(tmp_path, bwrap=False, apt_get=True))
    assert plan.tools_unit and plan.bwrap_via_apt
    assert "packages    bubblewrap, with apt-get" in plan.describe()


@pytest.mark.parametrize(("tier", "options", "changes", "says"), [
    ("edge", {}, {"bwrap": False, "apt_get": True}, None),  # no tools unit on an edge
    ("mid", {}, {"bwrap": True, "apt_get": True}, None),  # already there
    ("mid", {}, {"bwrap": False, "apt_get": False}, "until `apt-get install bubblewrap`"),
    ("mid", {"wheelhouse": Path("/")}, {"bwrap": False, "apt_get": True},
     "an offline install leaves apt alone"),
])
def test_no_apt_step_where_it_is_not_needed_or_cannot_run(
        tmp_path: Path, tier: str, options: dict[str, object], changes: dict[str, object],
        says: str | None) -> None:
    plan = make_plan(Options(tier=tier, **options), facts(tmp_path, **changes))
    assert not plan.bwrap_via_apt
    text = plan.describe()
    assert "packages    bubblewrap" not in text
    if says:
        assert says in text, text


def test_a_box_without_package_lists_updates_them_then_installs(
        tmp_path: Path, apt_calls: Path) -> None:
    plan = make_plan(Options(tier="mid"), facts(tmp_path, bwrap=False, apt_get=True))
    result, said = Result(), []
    _bubblewrap(plan, result, said.append)
    # update fails (an unreachable source), yet the second install finds the package
    calls = apt_calls.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["install", "update", "install"]
    for call in calls:  # never asks, waits for another apt's lock, keeps config files
        assert "DEBIAN_FRONTEND=noninteractive stdin=/dev/null" in call, call
        assert "DPkg::Lock::Timeout=300" in call and "--force-confold" in call, call
    assert result.changes == ["bubblewrap installed"] and not result.notes
    assert result.record == {"bwrap": True}
    assert said[0].startswith("installing bubblewrap with apt-get")


def test_apt_failing_leaves_the_tools_off_with_a_note_not_a_failed_install(
        tmp_path: Path, apt_calls: Path) -> None:
    (tmp_path / "always-fails").touch()
    plan = make_plan(Options(tier="core"), facts(tmp_path, bwrap=False, apt_get=True))
    result, said = Result(), []
    _bubblewrap(plan, result, said.append)
    assert len(apt_calls.read_text().splitlines()) == 3
    assert not result.changes
    assert result.record == {"bwrap": False}  # so a re-run once it is there restarts
    assert len(result.notes) == 1 and "stay off until `apt-get install bubblewrap`" in \
        result.notes[0] and "Unable to locate package bubblewrap" in result.notes[0]
    assert "going on without the shell and python tools" in said[-1]


def test_a_re_run_after_bubblewrap_was_installed_by_hand_restarts_the_tools(
        tmp_path: Path) -> None:
    # The last install recorded bubblewrap missing; the user ran apt-get install since.
    plan = make_plan(Options(tier="mid"), facts(tmp_path, bwrap=True, apt_get=True,
                                                record={"tier": "mid", "bwrap": False}))
    assert plan.bwrap_appeared and not plan.bwrap_via_apt
    result = Result()
    _bubblewrap(plan, result, print)
    assert result.changes == ["bubblewrap is there now"]  # a change: the units restart
    assert result.record == {"bwrap": True}
    again = make_plan(Options(), facts(tmp_path, record={"tier": "mid", "bwrap": True}))
    assert not again.bwrap_appeared
