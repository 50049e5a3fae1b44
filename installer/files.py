"""What the installer writes on the box: atomically, with its mode and group, and never over
what the user edited (config.yaml, the cluster key, the command on PATH)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from installer import USER, Paths, Result


def write_config(path: Path, want: str, recorded: object, result: Result, what: str) -> None:
    """config.yaml with the text ``want``: written when absent, replaced when the user had not
    edited it (its hash is ``recorded``, the default written last time), else kept, with the
    new defaults beside it in config.yaml.new. Records the hash of ``want``."""
    want_hash = sha(want)
    if not path.exists():
        write(path, want, 0o640, group=USER)
        result.changes.append(f"wrote {path} ({what})")
    else:
        have_hash = sha(path.read_text(errors="replace"))
        if have_hash == want_hash:
            pass
        elif recorded and have_hash == recorded:
            write(path, want, 0o640, group=USER)
            result.changes.append(f"updated {path} to the new defaults (you had not "
                                  "edited it)")
        elif recorded != want_hash:
            new = path.with_name("config.yaml.new")
            if write_if_changed(new, want, 0o640, group=USER):
                result.notes.append(f"kept your edited {path}; the new defaults are in "
                                    f"{new}: compare and merge by hand")
        else:
            result.notes.append(f"kept your edited {path}")
    result.record["config_default"] = want_hash


def write_cluster_key(path: Path, join: str | None, result: Result) -> None:
    """The cluster key at ``path``: the one the join code carries, else created if absent
    (and the join code for the next box goes into the notes)."""
    try:
        from appliance.security import keys
    except ImportError:
        return  # the security part is not in this tree yet
    if join:
        key = keys.key_from_code(join)
        if not path.exists() or keys.read_key(path) != key:
            keys.write_key(path, key)
            result.changes.append(f"joined the cluster: key {keys.fingerprint(key)} at {path}")
    elif not path.exists():
        key = keys.create_key_file(path)
        result.changes.append(f"created the cluster key {keys.fingerprint(key)} at {path}")
        result.notes.append("join other boxes with: sudo ./install.sh --join "
                            + keys.join_code(key))
    with contextlib.suppress(LookupError, OSError):  # no such user: a test's fake root
        shutil.chown(path, USER, USER)
        os.chmod(path, keys.KEY_FILE_MODE)


def link_command(paths: Paths, result: Result) -> None:
    """Symlink the venv's command onto PATH; anything there that is not a symlink is kept
    (and a note says so)."""
    link, target = paths.command_link, paths.command
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return
    elif link.exists():
        result.notes.append(f"{link} exists and is not a symlink, so it was left alone: "
                            f"run {target} instead, or remove {link} and re-run the installer")
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)  # swaps an old symlink atomically
    result.changes.append(f"linked {link} -> {target}")


def unlink_command(paths: Paths) -> bool:
    """Remove the symlink :func:`link_command` made; whether there was one (others are kept)."""
    link = paths.command_link
    if link.is_symlink() and os.readlink(link) == str(paths.command):
        link.unlink()
        return True
    return False


def write(path: Path, text: str, mode: int, group: str | None = None) -> None:
    """Write atomically with ``mode`` (and ``group``, when it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    if group:
        with contextlib.suppress(LookupError, OSError):
            shutil.chown(tmp, "root", group)
    os.replace(tmp, path)


def write_if_changed(path: Path, text: str, mode: int, group: str | None = None) -> bool:
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    write(path, text, mode, group)
    return True


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def passwd_users(passwd: Path) -> set[str]:
    try:
        return {line.split(":", 1)[0] for line in passwd.read_text().splitlines()}
    except OSError:
        return set()
