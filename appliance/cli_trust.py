"""`hybrid-agent devices ...` and `hybrid-agent cluster ...`: who may use this box, and which
boxes belong to the cluster.

Both work on the node's files directly (the devices file and the revocation
list in the state directory, the cluster key), so they need the rights of the
service (``sudo``); the running daemon picks the changes up within seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from appliance.cli import DEFAULT_URL, EXIT_FAIL, EXIT_OK, command, load_config
from appliance.config import Config

_NODE_ID = re.compile(r"[0-9a-f]{32}")
STATUS_TIMEOUT_S = 5.0


def web_fingerprints(cfg: Config) -> tuple[str, str]:
    """(certificate SHA-256, public-key pin) of the HTTPS certificate browsers are shown,
    made now if the box has none yet."""
    from appliance.security.webcert import load_web_cert

    web = load_web_cert(cfg.node.state_path / "tls", cfg.http.tls_cert, cfg.http.tls_key)
    return web.fingerprint, web.spki


# ---------------------------------------------------------------- devices


@command("devices", "pair, list and revoke the devices that may use this box from the LAN",
         "From any address but the box itself, the web page and the API need a paired "
         "device. `devices add NAME` shows a one-time code (valid 10 minutes) and the "
         "fingerprint of the box's HTTPS certificate: open https://BOX:PORT/ on the device, "
         "check the fingerprint, enter the code. Scripts exchange the code for a bearer "
         "token (POST /api/signin). Needs the service's rights (sudo).")
def _setup_devices(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="devices_cmd", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="make a one-time pairing code for a new device",
                         description="Make a one-time pairing code for a device called NAME "
                                     "and show how to use it.")
    add.add_argument("name", metavar="NAME", help="what to call the device (e.g. anna-phone)")
    add.add_argument("--json", action="store_true", help="print JSON")
    lst = sub.add_parser("list", help="list the paired devices")
    lst.add_argument("--json", action="store_true", help="print JSON")
    rev = sub.add_parser("revoke", help="unpair a device (its token stops working)",
                         description="Unpair the device with this name or id.")
    rev.add_argument("device", metavar="NAME_OR_ID")
    for sp in (add, lst, rev):
        sp.add_argument("--config", metavar="FILE", help="config file to use")
        sp.set_defaults(func=_cmd_devices)


def _cmd_devices(args: argparse.Namespace) -> int:
    from appliance.security.certs import CertError
    from appliance.security.devices import DeviceError, DeviceStore

    cfg = load_config(args.config)
    store = DeviceStore(cfg.node.state_path)
    try:
        if args.devices_cmd == "add":
            code = store.add_pairing(args.name)
            fingerprint, spki = web_fingerprints(cfg)
            _print_pairing(cfg, args.name, code, fingerprint, spki, args.json)
        elif args.devices_cmd == "list":
            devices = [d.summary() for d in store.devices()]
            if args.json:
                print(json.dumps(devices, indent=2))
            elif not devices:
                print("no paired devices (pair one with: sudo hybrid-agent devices add NAME)")
            else:
                print(f"{'ID':<17} {'PAIRED':<17} NAME")
                for d in devices:
                    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d["created"]))
                    print(f"{d['id']:<17} {when:<17} {d['name']}")
        else:
            gone = store.revoke(args.device)
            print(f"revoked {gone.name} ({gone.id}); its token no longer works")
    except (DeviceError, CertError) as exc:
        print(f"hybrid-agent devices: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except PermissionError as exc:
        print(f"hybrid-agent devices: {exc.strerror}: {exc.filename} (run it with sudo)",
              file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _print_pairing(cfg: Config, name: str, code: str, fingerprint: str, spki: str,
                   as_json: bool) -> None:
    host = socket.gethostname().split(".")[0]
    url = f"https://{host}.local:{cfg.http.port}/"
    if as_json:
        print(json.dumps({"name": name, "code": code, "expires_s": 600, "url": url,
                          "https_fingerprint": fingerprint, "spki": spki}))
        return
    print(f"Pairing code for {name!r}:  {code}   (valid 10 minutes, once)\n")
    print(f"On the device, open {url} (or https://<this box's address>:{cfg.http.port}/).")
    print("The browser cannot check the box's own certificate and says so: check that its")
    print("SHA-256 fingerprint is\n")
    print(f"    {fingerprint}\n")
    print("then continue to the page and enter the code. A script takes a token instead:\n")
    print(f"    curl --insecure --pinnedpubkey 'sha256//{spki}' \\")
    print("         -H 'Content-Type: application/json' \\")
    print(f"         -d '{{\"code\": \"{code}\", \"bearer\": true}}' {url}api/signin")


# ---------------------------------------------------------------- cluster


@command("cluster", "revoke a node from the cluster, or list the revoked ones",
         "`cluster revoke NODE` puts a node (by id, or by the name the running daemon knows "
         "it by) on the cluster's revocation list, signed with the cluster key: every node "
         "refuses its TLS connections, challenges and requests within seconds (the list "
         "travels with the nodes' probes), and nobody else needs a new key. Needs the "
         "service's rights (sudo).")
def _setup_cluster(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="cluster_cmd", metavar="ACTION", required=True)
    rev = sub.add_parser("revoke", help="revoke a node", description="Revoke NODE (id or name).")
    rev.add_argument("node", metavar="NODE")
    rev.add_argument("--url", default=DEFAULT_URL,
                     help=f"the local daemon, to look a name up (default {DEFAULT_URL})")
    lst = sub.add_parser("revoked", help="list the revoked nodes")
    for sp in (rev, lst):
        sp.add_argument("--config", metavar="FILE", help="config file to use")
        sp.set_defaults(func=_cmd_cluster)


def _cmd_cluster(args: argparse.Namespace) -> int:
    from appliance.security import certs, keys
    from appliance.security.errors import SecurityError
    from appliance.security.files import write_atomic
    from appliance.security.nodetls import PUBLIC_MODE, REVOCATIONS_FILE, read_revocation_file

    cfg = load_config(args.config)
    try:
        ca = certs.cluster_ca(keys.read_key(cfg.security.cluster_key_file))
    except (SecurityError, OSError) as exc:
        print(f"hybrid-agent cluster: {exc}", file=sys.stderr)
        return EXIT_FAIL
    path = cfg.node.state_path / "tls" / REVOCATIONS_FILE
    have = read_revocation_file(ca, path)
    revoked = set(have.node_ids) if have else set()
    if args.cluster_cmd == "revoked":
        print("\n".join(sorted(revoked)) if revoked else "no node is revoked")
        return EXIT_OK
    node_id = _node_id(args.node, args.url)
    if node_id is None:
        print(f"hybrid-agent cluster: no node {args.node!r} is known; give its id (32 hex "
              "characters, from `hybrid-agent status` on it or the cluster view)",
              file=sys.stderr)
        return EXIT_FAIL
    if node_id in revoked:
        print(f"node {node_id} is already revoked")
        return EXIT_OK
    new = certs.issue_revocations(ca, revoked | {node_id}, (have.number if have else 0) + 1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, new.pem, PUBLIC_MODE)
    except OSError as exc:
        print(f"hybrid-agent cluster: cannot write {path}: {exc.strerror or exc} "
              "(run it with sudo)", file=sys.stderr)
        return EXIT_FAIL
    print(f"revoked node {node_id}: every node of the cluster refuses it within seconds.")
    print("It still holds the cluster key: if the box is out of your hands, make a new key "
          "(hybrid-agent pair --init on a fresh key file) and join the others to it.")
    return EXIT_OK


def _node_id(which: str, url: str) -> str | None:
    if _NODE_ID.fullmatch(which):
        return which
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/peers",
                                    timeout=STATUS_TIMEOUT_S) as resp:
            peers: list[dict[str, Any]] = json.loads(resp.read(4 * 1024 * 1024))["peers"]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None
    found = [p["id"] for p in peers if p.get("name") == which and _NODE_ID.fullmatch(p["id"])]
    return found[0] if len(found) == 1 else None
