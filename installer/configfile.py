"""config.yaml as the installer sees it, through the project's own config module.

The installer runs under the system Python, which may lack PyYAML, so it asks
the venv's ``hybrid-agent`` command: ``config defaults --tier T --port N`` for
the text to write, ``config check FILE --json`` for the port a config names.
Nothing here parses or edits YAML itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from installer import InstallError

COMMAND_TIMEOUT_S = 120


def defaults(command: Path, tier: str, port: int) -> str:
    """The tier's commented default config, listening on ``port``."""
    proc = _run(command, "config", "defaults", "--tier", tier, "--port", str(port))
    if proc.returncode != 0:
        raise InstallError(f"{command} config defaults failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def port(command: Path, config: Path) -> int | None:
    """The http.port of ``config`` as the daemon reads it; None when there is no such file,
    no command to read it with yet, or a config the daemon could not load either."""
    if not config.is_file() or not command.exists():
        return None
    proc = _run(command, "config", "check", str(config), "--json")
    try:
        value = json.loads(proc.stdout)["http"]["port"] if proc.returncode == 0 else None
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _run(command: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([str(command), *args], capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{command} {args[0]} {args[1]}: {exc}") from None
