"""Checks of an installed hybrid-agent service in a booted container, shared by every tier's e2e.

Each check drives the real systemd in the container and asserts what a user
would see; the edge and mid modules call them in the same order on their own box.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from tests.e2e.conftest import SRC_INSIDE, wait_until
from tests.e2e.container import Container

SERVICE = "hybrid-agent"
CONFIG = "/etc/hybrid-agent/config.yaml"
UNIT_SRC = f"{SRC_INSIDE}/units/{SERVICE}.service"
SYMLINK = "/usr/local/bin/hybrid-agent"
# The unit's WatchdogSec= and RestartSec= (units/hybrid-agent.service).
WATCHDOG_SEC = 20
RESTART_SEC = 3
# Slack on top of WatchdogSec + RestartSec for the abort, the exit and a start.
RECOVERY_SLACK_S = 60
# A start loads the models (the LLM on mid): TimeoutStartSec=120 plus the daemon's extensions.
READY_TIMEOUT_S = 240
STOPPED_TIMEOUT_S = 15
FAILED_TIMEOUT_S = 60
BAD_KEY = "bogus_section"
USER_EDIT = ("  level: info", "  level: debug  # edited by the user")


@dataclass(frozen=True)
class Service:
    """The service one install.sh command line made in ``box``; ``install`` re-runs it."""

    box: Container
    port: int
    install: str
    tier: str

    # ------------------------------------------------------------ state

    def show(self, prop: str, unit: str = SERVICE) -> str:
        return self.box.sh(f"systemctl show -P {prop} {unit}").out.strip()

    def healthy(self) -> bool:
        r = self.box.sh("curl -fsS -o /dev/null -w '%{http_code}' "
                        f"http://127.0.0.1:{self.port}/health")
        return r.out.strip() == "200"

    def ready(self) -> bool:
        return self.show("ActiveState") == "active" and self.healthy()

    def wait_ready(self, what: str) -> None:
        wait_until(self.ready, READY_TIMEOUT_S, f"{SERVICE} ready {what}")

    # ------------------------------------------------------------ checks

    def status_shows_the_status_text(self) -> str:
        """`systemctl status` is active and quotes a StatusText that names the tier and ready."""
        text = self.show("StatusText")
        assert text.startswith(f"{self.tier}: ready"), text
        status = self.box.sh(f"systemctl status --no-pager {SERVICE}").out
        assert "active (running)" in status, status
        assert f'Status: "{text}"' in status, status
        return text

    def watchdog_restarts_a_hung_daemon(self) -> float:
        """SIGSTOP the main process: the watchdog restarts it once and it is ready again.

        Returns the seconds from the stop to the restart being counted.
        """
        before = int(self.show("NRestarts"))
        old_pid = self.show("MainPID")
        t0 = time.monotonic()
        # Only the main process: signalling the whole cgroup failed once with EIO
        # ("auxiliary processes") in CI.
        self.box.sh(f"systemctl kill --kill-who=main -s SIGSTOP {SERVICE}", check=True)
        # The signal is queued, not awaited: wait for the kernel to show it stopped.
        wait_until(lambda: self.box.sh(f"ps -o stat= -p {old_pid}").out.strip().startswith("T"),
                   STOPPED_TIMEOUT_S, f"main process {old_pid} stopped (state T)")
        wait_until(lambda: int(self.show("NRestarts")) > before,
                   WATCHDOG_SEC + RESTART_SEC + RECOVERY_SLACK_S, "the watchdog restart")
        took = time.monotonic() - t0
        self.wait_ready("after the watchdog restart")
        assert self.show("MainPID") != old_pid
        # Loading the models again did not trip the watchdog or the start timeout.
        assert int(self.show("NRestarts")) == before + 1
        journal = self.box.sh(f"journalctl -u {SERVICE} --no-pager").out
        assert "Watchdog timeout" in journal
        return took

    def kill_9_is_restarted(self) -> None:
        before = int(self.show("NRestarts"))
        pid = self.show("MainPID")
        self.box.sh(f"kill -9 {pid}", check=True)
        wait_until(lambda: int(self.show("NRestarts")) > before,
                   RESTART_SEC + RECOVERY_SLACK_S, "the restart after kill -9")
        self.wait_ready("after kill -9")
        assert self.show("MainPID") != pid
        assert int(self.show("NRestarts")) == before + 1

    def rerun_changes_nothing_and_keeps_the_users_edit(self) -> float:
        """Edit the config, re-run install.sh: nothing changed, edit kept, not restarted.

        Returns the wall time of the re-run.
        """
        cfg = self.box.root_path(CONFIG)
        text = cfg.read_text()
        edited = text.replace(*USER_EDIT)
        assert edited != text, f"no {USER_EDIT[0]!r} line in {CONFIG} to edit"
        cfg.write_text(edited)
        invocation = self.show("InvocationID")
        t0 = time.monotonic()
        r = self.box.sh(self.install)
        took = time.monotonic() - t0
        assert r.rc == 0, r.text[-4000:]
        assert "nothing changed" in r.out, r.out[-3000:]
        assert "upgrade in place" in r.out
        assert "python: /opt/hybrid-agent/venv is up to date" in r.out
        assert cfg.read_text() == edited
        assert not self.box.root_path(f"{CONFIG}.new").exists()
        assert self.show("InvocationID") == invocation  # not restarted
        return took

    def a_bad_config_fails_the_install_with_the_journal(self) -> None:
        """An unknown key and a release that restarts the service: install.sh exits non-zero
        quoting the journal that names the key; `systemctl status` says why in words; no
        automatic retries. Then the good config back and a re-run: ready again."""
        cfg = self.box.root_path(CONFIG)
        good = cfg.read_text()
        cfg.write_text(good + f"\n{BAD_KEY}:\n  answer: 42\n")
        bump_the_unit(self.box)  # a newer release: the re-run restarts the service
        r = self.box.sh(self.install)
        assert r.rc != 0, r.text[-4000:]
        assert f"restarting {SERVICE} to pick up: installed /etc/systemd/system/" in r.out, \
            r.out[-3000:]
        head, sep, tail = r.err.partition("Last journal lines:")
        assert sep and f"{SERVICE} did not start" in head, r.err[-3000:]
        # The journal's own lines (`... hybrid-agent[PID]: ...`) name the key and the fault.
        assert re.search(rf"{SERVICE}\[\d+\]: .*{BAD_KEY}", tail), tail
        assert "unknown key" in tail, tail
        assert self.show("ActiveState") == "failed"
        status = self.box.sh(f"systemctl status --no-pager -n 20 {SERVICE}").out
        assert BAD_KEY in status and "unknown key" in status, status
        # Exit status 2 (bad config) is not retried: restarting cannot fix a config. (The
        # installer's restart zeroes NRestarts; automatic retries would count up from there.)
        assert self.show("NRestarts") == "0"
        cfg.write_text(good)
        r = self.box.sh(self.install)
        assert r.rc == 0, r.text[-4000:]
        assert f"starting {SERVICE}" in r.out, r.out[-3000:]
        assert self.ready()

    def uninstall_keeps_config_and_models(self) -> None:
        r = self.box.sh(f"{SRC_INSIDE}/install.sh --uninstall")
        assert r.rc == 0, r.text
        for path in (f"/etc/systemd/system/{SERVICE}.service", "/opt/hybrid-agent"):
            assert not self.box.root_path(path).exists(), f"{path} left behind"
        assert not self.box.root_path(SYMLINK).is_symlink(), f"{SYMLINK} left behind"
        assert self.box.sh(f"command -v {SERVICE}").rc != 0
        assert self.box.sh(f"systemctl cat {SERVICE}").rc != 0
        assert self.box.root_path(CONFIG).exists()
        assert self.box.root_path("/var/lib/hybrid-agent/models/piper").exists()


def bump_the_unit(box: Container) -> None:
    """A newer release's unit in the source the box installs from (a comment: same behaviour)."""
    unit = box.root_path(UNIT_SRC)
    unit.write_text(unit.read_text() + f"# release {uuid.uuid4().hex[:8]}\n")
