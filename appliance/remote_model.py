"""An ``llm.model`` on the network: ``hf://OWNER/REPO/FILE.gguf@SHA256`` or ``https://…#sha256=…``.

A core with internet wants a bigger model than the packaged default. Such a
source names the file and the SHA-256 it must have; :func:`fetch` downloads it
(with a progress line), checks the hash while writing and only then moves it to
``models_dir/llm/remote/``, so a broken or interrupted download never becomes
the model. ``hf://`` resolves against ``$HF_ENDPOINT`` (Hugging Face's own
variable; default https://huggingface.co), which tests point at a local server.
Until the file is there, the daemon uses the packaged default and says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError

HUB = "https://huggingface.co"
HUB_ENV = "HF_ENDPOINT"
#: Connecting, and each read of the body.
TIMEOUT_S = 30.0
#: Largest model accepted (a 405B model at 4 bits is ~230 GB).
MAX_BYTES = 512 * 1024**3
#: Seconds between progress lines.
PROGRESS_EVERY_S = 2.0
CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class RemoteModelError(ApplianceError):
    """A remote model source is malformed, unreachable or not the file it claims."""


class Unreachable(RemoteModelError):
    """The server could not be reached or did not serve the file (the network's fault)."""


@dataclass(frozen=True)
class RemoteModel:
    """A model file on the network and the SHA-256 it must have."""

    source: str
    url: str
    filename: str
    sha256: str

    def local_path(self, models_dir: Path) -> Path:
        """Where the verified file lives: one name per hash, so a new hash is a new file."""
        return models_dir / "llm" / "remote" / f"{self.sha256[:16]}-{self.filename}"


def is_remote(source: str) -> bool:
    return source.startswith(("hf://", "https://", "http://"))


def parse(source: str, hub: str | None = None) -> RemoteModel:
    """``source`` as a RemoteModel; RemoteModelError saying what is wrong with it."""
    hub = (hub or os.environ.get(HUB_ENV) or HUB).rstrip("/")
    if source.startswith("hf://"):
        body, _, digest = source[5:].partition("@")
        parts = body.split("/")
        if len(parts) != 3 or not all(_PART.match(p) for p in parts):
            raise RemoteModelError(f"{source!r}: expected hf://OWNER/REPO/FILE.gguf@SHA256")
        owner, repo, filename = parts
        url = f"{hub}/{owner}/{repo}/resolve/main/{urllib.parse.quote(filename)}"
    elif source.startswith(("https://", "http://")):
        url, _, fragment = source.partition("#")
        digest = fragment[7:] if fragment.startswith("sha256=") else ""
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if not _PART.match(filename):
            raise RemoteModelError(f"{source!r}: the URL must end in a file name")
    else:
        raise RemoteModelError(f"{source!r}: not hf:// or https://")
    digest = digest.lower()
    if not _SHA.match(digest):
        raise RemoteModelError(f"{source!r}: needs the file's SHA-256 (64 hex digits) "
                               "after @ (hf://) or #sha256= (https://)")
    if not filename.endswith(".gguf"):
        raise RemoteModelError(f"{source!r}: the file must be a .gguf")
    return RemoteModel(source, url, filename, digest)


def fetch(model: RemoteModel, models_dir: Path, progress: Callable[[str], None]) -> Path:
    """Download, verify and place ``model``; its path. A valid file already there is kept."""
    # Here, not at the top: the config parses sources, and every command loads the config.
    import urllib.error
    import urllib.request

    target = model.local_path(models_dir)
    if target.is_file() and _sha256(target) == model.sha256:
        progress(f"llm: {model.filename} already present and valid")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    request = urllib.request.Request(model.url, headers={"User-Agent": "hybrid-agent"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            if total > MAX_BYTES:
                raise RemoteModelError(f"{model.url} is {total} bytes; at most {MAX_BYTES}")
            digest = hashlib.sha256()
            done, last = 0, 0.0
            progress(f"llm: fetching {model.filename} from {model.url}"
                     + (f" ({total / 1e6:.0f} MB)" if total else ""))
            with open(part, "wb") as out:
                while chunk := resp.read(CHUNK):
                    done += len(chunk)
                    if done > MAX_BYTES:
                        raise RemoteModelError(f"{model.url} is larger than {MAX_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                    if time.monotonic() - last >= PROGRESS_EVERY_S:
                        last = time.monotonic()
                        share = f" {100 * done / total:.0f}%" if total else ""
                        progress(f"llm: {model.filename}{share} {done / 1e6:.0f} MB")
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise Unreachable(f"{model.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, urllib.error.URLError | TimeoutError) \
                and exc.errno is not None and exc.filename is not None:
            raise RemoteModelError(f"cannot write {exc.filename}: {exc.strerror}") from None
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"{model.url}: {reason}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if total and done != total:
        part.unlink(missing_ok=True)
        raise Unreachable(f"{model.url}: the download ended after {done} of {total} bytes")
    if digest.hexdigest() != model.sha256:
        part.unlink(missing_ok=True)
        raise RemoteModelError(f"{model.url} has sha256 {digest.hexdigest()[:16]}..., not the "
                               f"{model.sha256[:16]}... the source names: refused")
    os.replace(part, target)
    progress(f"llm: {model.filename} verified ({done / 1e6:.0f} MB) and placed at {target}")
    return target


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
