"""`hybrid-agent pair` and `hybrid-agent join`: the cluster key, shown as a join code and
taken from one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.cli import EXIT_FAIL, EXIT_OK, command, load_config


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
