"""The hybrid-agent installer: detect -> plan -> apply.

Runs under the system ``python3`` straight from the source tree (install.sh
puts the tree on ``PYTHONPATH``), so it uses the standard library only and
reaches the rest of the project through the venv's ``hybrid-agent`` command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ApplianceError


class InstallError(ApplianceError):
    """The install cannot go on; the message says why and what to do."""


class PreflightError(InstallError):
    """A check before any change failed: nothing was touched."""


@dataclass(frozen=True)
class Paths:
    """Where the installer puts things; ``under(root)`` relocates all of it for tests."""

    opt: Path = Path("/opt/hybrid-agent")
    etc: Path = Path("/etc/hybrid-agent")
    state: Path = Path("/var/lib/hybrid-agent")
    cache: Path = Path("/var/cache/hybrid-agent")
    logs: Path = Path("/var/log/hybrid-agent")
    tools_state: Path = Path("/var/lib/hybrid-agent-tools")
    unit_dir: Path = Path("/etc/systemd/system")
    sysusers_dir: Path = Path("/etc/sysusers.d")
    tmpfiles_dir: Path = Path("/etc/tmpfiles.d")
    default_file: Path = Path("/etc/default/hybrid-agent")
    group_file: Path = Path("/etc/group")
    passwd_file: Path = Path("/etc/passwd")
    bin_dir: Path = Path("/usr/local/bin")
    """Where the ``hybrid-agent`` command is linked, so it is on everyone's PATH (and sudo's)."""

    @property
    def venv(self) -> Path:
        return self.opt / "venv"

    @property
    def command(self) -> Path:
        """The venv's ``hybrid-agent`` command."""
        return self.venv / "bin" / SERVICE

    @property
    def command_link(self) -> Path:
        """The symlink to :attr:`command` on PATH."""
        return self.bin_dir / SERVICE

    @property
    def record(self) -> Path:
        """What the last install did (tier, port, hashes); root's, beside the venv."""
        return self.opt / "install.json"

    @property
    def config(self) -> Path:
        return self.etc / "config.yaml"

    @property
    def cluster_key(self) -> Path:
        return self.etc / "cluster.key"

    @property
    def models(self) -> Path:
        return self.state / "models"

    @property
    def unit(self) -> Path:
        return self.unit_dir / f"{SERVICE}.service"

    @property
    def tools_unit(self) -> Path:
        return self.unit_dir / f"{TOOLS_SERVICE}.service"

    @property
    def tools_socket(self) -> Path:
        """The tool server's listening socket (the service has no network of its own)."""
        return self.unit_dir / f"{TOOLS_SERVICE}.socket"

    @property
    def sysusers(self) -> Path:
        return self.sysusers_dir / f"{SERVICE}.conf"

    @property
    def tmpfiles(self) -> Path:
        return self.tmpfiles_dir / f"{SERVICE}.conf"

    def under(self, root: Path) -> Paths:
        """The same layout below ``root`` (tests)."""
        return Paths(**{name: root / str(getattr(self, name)).lstrip("/")
                        for name in self.__dataclass_fields__})


SERVICE = "hybrid-agent"
TOOLS_SERVICE = "hybrid-agent-tools"
USER = "hybrid-agent"

Say = Callable[[str], None]
"""Where progress lines go (print, or a test's list)."""


@dataclass
class Result:
    """What an install changed, in words."""

    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    record: dict[str, object] = field(default_factory=dict)
    """Extra fields for the install record, written only once the service is ready."""
    port: int | None = None
    """The port the service listens on, when the config kept names another than the plan's."""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

