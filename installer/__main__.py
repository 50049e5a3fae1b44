"""`python3 -m installer`: what install.sh hands over to (detect -> plan -> apply)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from installer import SERVICE, InstallError, Paths, PreflightError

if TYPE_CHECKING:
    from installer.detect import Facts

Probe = Callable[..., "Facts"]

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
SRC = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="install.sh",
        description="Install (or upgrade in place) hybrid-agent as the systemd service "
                    f"{SERVICE}. Re-running changes only what differs and restarts the "
                    "service only then.")
    p.add_argument("--tier", choices=("edge", "mid", "core"),
                   help="override the tier detected from the hardware")
    p.add_argument("--port", type=_port, help="HTTP port (default 8700, or the one in use)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before changing things")
    p.add_argument("--wheelhouse", type=Path, metavar="DIR",
                   help="install from the wheels in DIR only, with no network "
                        "(docs/operations.md says how to build one)")
    p.add_argument("--find-links", type=Path, metavar="DIR", action="append", default=[],
                   help="also take wheels from DIR, on top of the index (repeatable)")
    p.add_argument("--debs", type=Path, metavar="DIR",
                   help="install the Debian packages in DIR (a release directory) with "
                        "apt-get; by default the ones `make deb` put in dist/ are used when "
                        "there are any for this architecture")
    p.add_argument("--no-deb", action="store_true",
                   help="build the venv from source even where a package exists")
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--join", metavar="CODE",
                   help="join an existing cluster with the code `hybrid-agent pair` prints")
    p.add_argument("--uninstall", action="store_true",
                   help="stop and remove the service, its units and the venv")
    p.add_argument("--purge", action="store_true",
                   help="with --uninstall: also remove config, state, models and the user")
    return p


def main(argv: list[str] | None = None, *, paths: Paths | None = None,
         probe: Probe | None = None) -> int:
    """Run the installer; the exit status. ``paths`` and ``probe`` (default: the real
    :func:`installer.detect.detect`) let tests relocate it and stand in for what a box lacks."""
    args = build_parser().parse_args(argv)
    if args.purge and not args.uninstall:
        print("install.sh: --purge only goes with --uninstall", file=sys.stderr)
        return EXIT_USAGE
    from installer import apply, configfile, detect, plan

    paths = paths or Paths()
    if args.uninstall:
        import os

        if os.geteuid() != 0:
            print("install.sh: run it with sudo\nNothing was changed.", file=sys.stderr)
            return EXIT_FAIL
        print(f"uninstalling {SERVICE}")
        if detect.dpkg_version(detect.PACKAGE):
            apply.uninstall_package(args.purge)
        else:
            apply.uninstall(paths, args.purge)
        print(f"{SERVICE} uninstalled")
        return EXIT_OK

    options = plan.Options(
        tier=args.tier, port=args.port, yes=args.yes, wheelhouse=args.wheelhouse,
        find_links=tuple(args.find_links), dry_run=args.dry_run, join=args.join,
        debs=args.debs, no_deb=args.no_deb)
    record = detect.read_record(paths.record)
    ports = sorted({p for p in (args.port, record.get("port"),
                                configfile.port(paths.command, paths.config), plan.DEFAULT_PORT)
                    if isinstance(p, int)})
    try:
        if args.join:
            _check_join(args.join)
        if args.debs is not None and not args.debs.is_dir():
            raise PreflightError(f"--debs {args.debs} is not a directory")
        deb_dirs = () if args.no_deb else (args.debs,) if args.debs else (SRC / "dist",)
        facts = (probe or detect.detect)(paths, ports, need_network=args.wheelhouse is None,
                                         deb_dirs=deb_dirs)
        the_plan = plan.make_plan(options, facts)
    except PreflightError as exc:
        print(f"install.sh: {exc}\nNothing was changed.", file=sys.stderr)
        return EXIT_FAIL
    print(the_plan.describe(), flush=True)
    if args.dry_run:
        print("dry run: nothing was changed")
        return EXIT_OK
    if not args.yes and not _confirm():
        print("nothing was changed")
        return EXIT_FAIL
    try:
        result = (apply.apply_packages(the_plan) if the_plan.debs else
                  apply.apply(the_plan, SRC))
    except InstallError as exc:
        print(f"install.sh: {exc}", file=sys.stderr)
        return EXIT_FAIL
    for note in result.notes:
        print(f"note: {note}")
    if result.changed:
        print("changed: " + "; ".join(result.changes))
    else:
        print("nothing changed: the installed hybrid-agent is up to date")
    port = result.port or the_plan.port
    print(f"\nhybrid-agent is running: https://{_hostname()}:{port}/\n"
          f"{https_lines(the_plan.paths.state)}"
          f"  more: journalctl -u {SERVICE} -f;  {SERVICE} status "
          f"--url http://127.0.0.1:{port}\n\n$ systemctl status {SERVICE}", flush=True)
    subprocess.run(["systemctl", "status", "--no-pager", "--lines=5", SERVICE], check=False)
    return EXIT_OK


def https_lines(state: Path) -> str:
    """How people reach the box: the HTTPS certificate's fingerprint (made by the service at
    its first start) and how to pair a device; '' when there is no certificate (yet)."""
    import base64
    import hashlib

    try:
        pem = (state / "tls" / "web.crt").read_text()
        body = pem.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END", 1)[0]
        digest = hashlib.sha256(base64.b64decode(body)).hexdigest().upper()
    except (OSError, IndexError, ValueError):
        return ""
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    return (f"  HTTPS certificate SHA-256 (check it in the browser the first time):\n"
            f"    {fingerprint}\n"
            f"  let a phone or computer in: sudo {SERVICE} devices add NAME\n")


def _check_join(code: str) -> None:
    try:
        from appliance.security import keys
    except ImportError:
        raise PreflightError("--join needs appliance.security, which this tree lacks") from None
    from appliance.security.errors import JoinCodeError

    try:
        keys.key_from_code(code)
    except JoinCodeError as exc:
        raise PreflightError(f"--join: {exc}") from None


def _confirm() -> bool:
    if not sys.stdin.isatty():
        print("install.sh: not a terminal to ask on: add --yes to go ahead", file=sys.stderr)
        return False
    return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 1-65535")
    return value


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
