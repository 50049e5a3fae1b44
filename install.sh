#!/usr/bin/env bash
# hybrid-agent installer bootstrap: checks root and Python, then hands over to
# the Python installer (installer/: detect -> plan -> apply), which makes the
# venv in /opt/hybrid-agent/venv, fetches the models and installs the service.
# Usage: sudo ./install.sh [--tier edge|mid|core] [--port N] [--yes] [--wheelhouse DIR]
#                          [--find-links DIR] [--dry-run] [--join CODE] [--uninstall [--purge]]
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIN_MAJOR=3
MIN_MINOR=11

die() { echo "install.sh: $*" >&2; exit 1; }
# A refusal before anything was touched (docs/operations.md promises the last line).
refuse() { die "$*"$'\n'"Nothing was changed."; }

yes=0
for arg in "$@"; do
  case "$arg" in
    --yes|-y) yes=1 ;;
    --help|-h) exec python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from installer.__main__ import build_parser; build_parser().print_help()' "$SRC" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || refuse "it installs a system service: run it with sudo (sudo ./install.sh)"

command -v python3 >/dev/null 2>&1 || refuse "python3 is missing: apt-get install python3 (3.${MIN_MINOR} or newer)"
if ! python3 -c "import sys; sys.exit(sys.version_info < (${MIN_MAJOR}, ${MIN_MINOR}))"; then
  refuse "Python $(python3 -c 'import platform; print(platform.python_version())') is too old: hybrid-agent needs ${MIN_MAJOR}.${MIN_MINOR} or newer (Debian 12 / Raspberry Pi OS bookworm has 3.11)."
fi

# Debian splits venv support (ensurepip) into python3-venv.
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  if [ "$yes" -eq 1 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing python3-venv with apt-get"
    apt-get install -y python3-venv || die "apt-get install python3-venv failed"
  elif [ "$yes" -eq 1 ]; then
    refuse "Python's venv support (python3-venv) is missing and there is no apt-get to install it with: install it, then run this again"
  else
    refuse "Python's venv support is missing: apt-get install python3-venv (or re-run with --yes)"
  fi
fi

# The installer uses the standard library only and runs straight from this tree.
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m installer "$@"
