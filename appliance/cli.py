"""The `hybrid-agent` command: argv in, one subcommand out.

Subcommands register themselves in :data:`COMMANDS` through :func:`command`;
each gets its own parser section and a handler ``(args) -> exit status``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance import config as config_mod

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
#: What a shell reports for a program killed by SIGPIPE (`hybrid-agent ... | head`).
EXIT_BROKEN_PIPE = 128 + 13
#: `models fetch`: a remote llm.model could not be downloaded (the default stays in use).
EXIT_UNREACHABLE = 3
DEFAULT_URL = f"http://127.0.0.1:{config_mod.DEFAULT_PORT}"
STATUS_TIMEOUT_S = 5.0

Setup = Callable[[argparse.ArgumentParser], None]
Handler = Callable[[argparse.Namespace], int]
COMMANDS: list[tuple[str, str, str, Setup, Handler]] = []


def command(name: str, help_: str, description: str) -> Callable[[Setup], Setup]:
    """Register a subcommand: decorate its parser setup; it sets ``func``."""

    def wrap(setup: Setup) -> Setup:
        COMMANDS.append((name, help_, description, setup, lambda a: a.func(a)))
        return setup

    return wrap


def load_config(path: str | None) -> config_mod.Config:
    """Load the config for a subcommand; ConfigError propagates to :func:`main`."""
    return config_mod.load(Path(path) if path else None)


# ---------------------------------------------------------------- run


@command("run", "run the daemon in the foreground",
         "Run the hybrid-agent daemon in the foreground. This is what the systemd unit "
         "calls. The config comes from --config, else $HYBRID_AGENT_CONFIG, else "
         "/etc/hybrid-agent/config.yaml; when none exists the detected tier's defaults apply.")
def _setup_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="config file to use")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from appliance import daemon, logs

    cfg = load_config(args.config)
    logs.setup(cfg.logging.level)
    return daemon.run(cfg)


# ---------------------------------------------------------------- config


@command("config", "check a config or print a tier's defaults",
         "Work with the config file (/etc/hybrid-agent/config.yaml).")
def _setup_config(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate FILE and print the effective config",
                           description="Validate a config file and print the effective config "
                                       "with every default filled in. Exit status 2 when it is "
                                       "invalid, with a message naming the key.")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    check.set_defaults(func=_cmd_config_check)
    defaults = sub.add_parser("defaults", help="print a tier's defaults as commented YAML",
                              description="Print the defaults of a tier as YAML with a comment "
                                          "on every key, a file to start from.")
    defaults.add_argument("--tier", choices=config_mod.TIERS, required=True)
    defaults.add_argument("--port", type=int, default=config_mod.DEFAULT_PORT,
                          help=f"http.port to write (default {config_mod.DEFAULT_PORT})")
    defaults.set_defaults(func=_cmd_config_defaults)


def _cmd_config_check(args: argparse.Namespace) -> int:
    cfg = config_mod.load(Path(args.file))
    if args.json:
        print(json.dumps(config_mod.to_dict(cfg), indent=2))
    else:
        print(f"# {args.file}: valid; effective config ({cfg.tier} tier):")
        print(config_mod.dump_yaml(cfg), end="")
    return EXIT_OK


def _cmd_config_defaults(args: argparse.Namespace) -> int:
    print(config_mod.tier_defaults_yaml(args.tier, args.port), end="")
    return EXIT_OK


# ---------------------------------------------------------------- status


@command("status", "summarise a running daemon",
         "Ask a running daemon (default http://127.0.0.1:8700) what it is: name, id, tier, "
         "roles, version, uptime, readiness, components and peers.")
def _setup_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help=f"daemon address (default {DEFAULT_URL})")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    p.set_defaults(func=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/") + "/api/status"
    try:
        with urllib.request.urlopen(url, timeout=STATUS_TIMEOUT_S) as resp:
            data = json.loads(resp.read(1024 * 1024))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"hybrid-agent status: no daemon answers at {args.url}: {reason}\n"
              "  Is it running? Try: systemctl status hybrid-agent", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(format_status(data))
    return EXIT_OK


def format_status(data: dict[str, Any]) -> str:
    """The human summary of an /api/status answer."""
    up = float(data.get("uptime_s", 0))
    lines = [
        f"{data.get('name')}  ({data.get('tier')} tier, id {data.get('id')})",
        f"  version   {data.get('version')}",
        f"  state     {'ready' if data.get('ready') else 'NOT READY'} - {data.get('status', '')}",
        f"  uptime    {_duration(up)}",
        f"  roles     {', '.join(data.get('roles') or []) or '-'}",
    ]
    https = ((data.get("components") or {}).get("security") or {}).get("https_fingerprint")
    if https:
        lines.append(f"  https     certificate SHA-256 {https}")
    lines.append("  components:")
    for name, comp in (data.get("components") or {}).items():
        mark = "ok" if comp.get("healthy") else "UNHEALTHY"
        detail = ", ".join(f"{k}={v}" for k, v in comp.items() if k != "healthy")
        lines.append(f"    {name:<12} {mark}  {detail}")
    if not data.get("components"):
        lines.append("    (none)")
    peers = data.get("peers") or []
    lines.append(f"  peers: {len(peers)}")
    for peer in peers:
        line = (f"    {peer.get('name')} {peer.get('tier') or '?'} {peer.get('url')} "
                f"{'trusted' if peer.get('trusted') else 'untrusted'} "
                f"{'up' if peer.get('healthy') else 'down'}")
        if peer.get("problem"):
            line += f" ({peer['problem']})"
        lines.append(line)
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


# ---------------------------------------------------------------- hardware


@command("hardware", "show the detected hardware and the tier it implies",
         "Print what was detected (cores, RAM, GPU, architecture, Python) and the tier "
         "it implies, with the reason.")
def _setup_hardware(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_hardware)


def _cmd_hardware(args: argparse.Namespace) -> int:
    from appliance import hardware, tiers

    hw = hardware.detect()
    choice = tiers.choose_tier(hw)
    if args.json:
        print(json.dumps({"hardware": hw.to_dict(), "tier": choice.tier,
                          "reason": choice.reason}, indent=2))
        return EXIT_OK
    gpus = ", ".join(f"{g.name} ({g.memory_gib:.0f} GiB)" for g in hw.gpus) or "none (NVIDIA)"
    print(f"cores     {hw.cores} usable of {hw.host_cpus} ({hw.physical_cores} physical)"
          + (f"; {hw.cpu_limit}" if hw.cpu_limit else ""))
    print(f"memory    {hw.memory_gib:.1f} GiB usable of {hw.host_memory_bytes / 2**30:.1f} GiB"
          + (f"; {hw.memory_limit}" if hw.memory_limit else ""))
    print(f"gpu       {gpus}")
    print(f"arch      {hw.arch}")
    print(f"python    {hw.python}")
    print(f"tier      {choice.tier}: {choice.reason}")
    return EXIT_OK


# ---------------------------------------------------------------- doctor


@command("doctor", "check this box, one line per check",
         "Check the box: Python, systemd, config, HTTP port, models, sound devices, disk, "
         "clock. One line per check: OK, WARN or FAIL with how to fix it. Exit status 1 when "
         "anything FAILs.")
def _setup_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="config file to check")
    p.add_argument("--json", action="store_true",
                   help='print JSON: {"ok": bool, "checks": [{"name", "level", "message", '
                        '"fix"}]}')
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from appliance import doctor

    results = doctor.run_checks(Path(args.config) if args.config else None)
    failed = any(r.level == "FAIL" for r in results)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [r.to_json() for r in results]},
                         indent=2))
    else:
        for r in results:
            print(r.line())
    return EXIT_FAIL if failed else EXIT_OK


# ---------------------------------------------------------------- discover

DISCOVER_TIMEOUT_S = 3.0


@command("discover", "list the hybrid-agent nodes on the LAN",
         "Browse the LAN over mDNS for --timeout seconds and list every hybrid-agent node "
         "found: name, tier, address, roles, models, load and whether it proves the cluster "
         "key of this box. Works with or without a running daemon.")
def _setup_discover(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=DISCOVER_TIMEOUT_S, metavar="S",
                   help=f"seconds to listen (default {DISCOVER_TIMEOUT_S})")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--config", metavar="FILE", help="config file (interfaces, key file)")
    p.set_defaults(func=_cmd_discover)


def _cmd_discover(args: argparse.Namespace) -> int:
    import asyncio

    from appliance.discovery.scan import discover, format_table

    if not 0 < args.timeout <= 600:
        print("hybrid-agent discover: --timeout must be between 0 and 600 seconds",
              file=sys.stderr)
        return EXIT_USAGE
    cfg = load_config(args.config)
    try:
        found = asyncio.run(discover(cfg, args.timeout))
    except (OSError, RuntimeError) as exc:
        print(f"hybrid-agent discover: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(json.dumps(found, indent=2) if args.json else format_table(found))
    return EXIT_OK


# ---------------------------------------------------------------- tools-server

@command("tools-server", "run only the sandboxed tool server (hybrid-agent-tools.service)",
         "Run the tool server for the dangerous tools (shell, python) on 127.0.0.1 at "
         "tools.server_port, signed requests only. The main unit's sandbox forbids the "
         "namespaces bubblewrap needs, so on mid and core nodes this runs as its own unit and "
         "the daemon hands shell and python to it (see docs/tools.md).")
def _setup_tools_server(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="config file to use")
    p.set_defaults(func=_cmd_tools_server)


def _cmd_tools_server(args: argparse.Namespace) -> int:
    from appliance import daemon, logs
    from appliance.tools.factory import tools_server_config

    creds = os.environ.get("CREDENTIALS_DIRECTORY")  # LoadCredential= of the unit
    cfg = tools_server_config(load_config(args.config), Path(creds) if creds else None)
    logs.setup(cfg.logging.level)
    return daemon.run(cfg)



# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = argparse.ArgumentParser(
        prog="hybrid-agent",
        description="hybrid-agent: a self-hosted voice-and-text assistant. One daemon per "
                    "box; the tier (edge, mid, core) follows the hardware; boxes find each "
                    "other on the LAN.",
        epilog="Run 'hybrid-agent COMMAND --help' for what a command does.")
    parser.add_argument("--version", action="version", version=f"hybrid-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_, description, setup, _handler in sorted(COMMANDS, key=_help_order):
        setup(sub.add_parser(name, help=help_, description=description))
    return parser


def _load_plugins() -> None:
    """Import modules whose subcommands register through :func:`command`."""
    import importlib

    for mod in _PLUGIN_MODULES:
        importlib.import_module(mod)


def _help_order(entry: tuple[str, str, str, Setup, Handler]) -> int:
    return _HELP_ORDER.index(entry[0]) if entry[0] in _HELP_ORDER else len(_HELP_ORDER)


# --help lists the commands in this order, then those of other modules.
_HELP_ORDER = ("run", "config", "status", "hardware", "doctor", "models", "discover", "pair",
               "join", "transcribe", "say", "chat", "tools-server")
# Modules that add subcommands of their own (each imports only light modules at import).
_PLUGIN_MODULES: list[str] = ["appliance.cli_models", "appliance.cli_voice",
                               "appliance.cli_chat", "appliance.cli_pair", "appliance.cli_trust"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except config_mod.ConfigError as exc:
        print(f"hybrid-agent: invalid config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a program killed by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    # Run as the module appliance.cli (not __main__), so plugins register where main looks.
    from appliance import cli as _cli

    sys.exit(_cli.main())
