"""Plan -> changes on the box, idempotently: venv, models, user, directories, config, units.

Each step compares what is there with what should be and says whether it
changed something; the service is restarted only when a step did. A fresh
install that fails before its units are in place is rolled back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from installer import (
    SERVICE,
    TOOLS_SERVICE,
    USER,
    InstallError,
    Paths,
    Result,
    Say,
    configfile,
    detect,
    llama,
    package,
)
from installer.commands import PIP_TIMEOUT_S, run, show, systemctl, unit_state, wait_ready
from installer.files import (
    link_command,
    passwd_users,
    unlink_command,
    write,
    write_cluster_key,
    write_config,
    write_if_changed,
)
from installer.plan import Plan

APT_TIMEOUT_S = 900
APT_LOCK_WAIT_S = 300
SOURCE_PARTS = ("pyproject.toml", "README.md", "LICENSE", "appliance", "installer")
# Wait for another apt (apt-daily, unattended-upgrades) instead of failing at once;
# never ask: no terminal input, and keep any existing config file (one's edited
# /etc/default/hybrid-agent too).
APT_GET = ("apt-get", "-y", "-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_S}",
           "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


def apply(plan: Plan, src: Path, say: Say = print) -> Result:
    """Carry out ``plan`` from the source tree ``src``; InstallError on failure."""
    paths = plan.paths
    fresh = not paths.record.exists()
    made = [p for p in (paths.opt, paths.state) if not p.exists()]
    result = Result()
    try:
        _venv(plan, src, result, say)
        _models(plan, result, say)
    except BaseException:
        if fresh:
            say("install failed before any unit was installed: removing what it created")
            for p in made:
                shutil.rmtree(p, ignore_errors=True)
        raise
    _bubblewrap(plan, result, say)
    _user(plan, src, result, say)
    _config(plan, src, result, say)
    _cluster_key(plan, result, say)
    if _units(plan, src, result, say):
        systemctl("daemon-reload")
    services = [SERVICE] + ([TOOLS_SERVICE] if plan.tools_unit else [])
    changed = result.changed
    # After the snapshot: the command on PATH is no reason to restart the service.
    link_command(paths, result)
    # Starts and restarts are queued, not awaited: readiness must come from the new
    # invocation, not from the one (still active, or failed) before it.
    stale: dict[str, str] = {}
    if plan.tools_unit:
        systemctl("enable", f"{TOOLS_SERVICE}.socket")
    for service in services:
        systemctl("enable", f"{service}.service")
        if unit_state(service) != "active":
            say(f"starting {service}")
            stale[service] = show(service, "InvocationID")
            systemctl("reset-failed", f"{service}.service", check=False)
            systemctl("start", "--no-block", f"{service}.service")
            result.changes.append(f"{service} started")
        elif changed:
            say(f"restarting {service} to pick up: {'; '.join(result.changes)}")
            stale[service] = show(service, "InvocationID")
            systemctl("restart", "--no-block", f"{service}.service")
    wait_ready(result.port or plan.port, say, stale=stale.get(SERVICE, ""))
    if plan.tools_unit:  # Type=notify: active means ready
        wait_ready(None, say, service=TOOLS_SERVICE, stale=stale.get(TOOLS_SERVICE, ""))
    _write_record(plan, src, result)
    return result


def apply_packages(plan: Plan, say: Say = print) -> Result:
    """Install ``plan.debs`` with apt-get: their postinst configures the box (tier, port,
    join code and wheelhouse are handed over in its environment, installer/package.py) and
    starts the service; then wait until it is ready. A venv install is replaced first."""
    paths = plan.paths
    result = Result()
    previous = detect.read_record(paths.record)
    if previous:
        say(f"replacing the venv install in {paths.opt} by the package (config, cluster key, "
            "state and models are kept)")
        uninstall(paths, purge=False, say=say)
        # The package's configure step knows the default config the venv install wrote.
        if previous.get("config_default"):
            write(package.record_path(paths), json.dumps(
                {"config_default": previous["config_default"]}) + "\n", 0o644)
        result.changes.append("removed the venv install")
    before = detect.dpkg_version(detect.PACKAGE)
    invocation = show(SERVICE, "InvocationID")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive",
           package.ENV_TIER: plan.tier, package.ENV_PORT: str(plan.port)}
    if plan.options.join:
        env[package.ENV_JOIN] = plan.options.join
    if plan.options.wheelhouse:
        env[package.ENV_WHEELHOUSE] = str(plan.options.wheelhouse.resolve())
    say("apt-get install " + " ".join(d.name for d in plan.debs))
    run([*APT_GET, "install", "--no-install-recommends", *(str(d.resolve()) for d in plan.debs)],
         "apt-get install", stream=True, timeout=APT_TIMEOUT_S, env=env)
    after = detect.dpkg_version(detect.PACKAGE)
    if after != before:
        result.changes.append(f"installed the package hybrid-agent {after}"
                              + (f" (was {before})" if before else ""))
    wait_ready(plan.port, say, stale=invocation if result.changes else "")
    return result


def uninstall_package(purge: bool, say: Say = print) -> None:
    """apt-get remove (or purge) the packages: remove keeps config, state and models."""
    # A purge also takes packages already removed (their state, e.g. the tools unit's
    # enablement, stays until purged).
    installed = [p for p in (detect.LLM_PACKAGE, detect.PACKAGE)
                 if detect.dpkg_version(p) or (purge and detect.dpkg_has_config(p))]
    run([*APT_GET, "purge" if purge else "remove", *installed], "apt-get remove",
         stream=True, timeout=APT_TIMEOUT_S,
         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not purge:
        say("kept /etc/hybrid-agent, /var/lib/hybrid-agent (state and models): remove them "
            "with --purge")


def uninstall(paths: Paths, purge: bool, say: Say = print) -> list[str]:
    """Stop and remove the service and the venv (and, with ``purge``, config, state, models)."""
    removed = []
    for service, unit in ((TOOLS_SERVICE, paths.tools_unit), (SERVICE, paths.unit)):
        if unit.exists():
            systemctl("disable", "--now", f"{service}.service", check=False)
    if paths.tools_socket.exists():
        systemctl("disable", "--now", f"{TOOLS_SERVICE}.socket", check=False)
    for p in (paths.unit, paths.tools_unit, paths.tools_socket, paths.sysusers, paths.tmpfiles):
        if p.exists():
            p.unlink()
            removed.append(str(p))
    systemctl("daemon-reload", check=False)
    systemctl("reset-failed", f"{SERVICE}.service", f"{TOOLS_SERVICE}.service", check=False)
    if unlink_command(paths):
        removed.append(str(paths.command_link))
    if paths.opt.exists():
        shutil.rmtree(paths.opt)
        removed.append(str(paths.opt))
    if purge:
        for p in (paths.etc, paths.state, paths.tools_state, paths.cache, paths.logs,
                  paths.default_file):
            if p.is_dir():
                shutil.rmtree(p)
                removed.append(str(p))
            elif p.exists():
                p.unlink()
                removed.append(str(p))
        if USER in passwd_users(paths.passwd_file):
            subprocess.run(["userdel", USER], check=False, capture_output=True)
            subprocess.run(["groupdel", USER], check=False, capture_output=True)
            removed.append(f"user {USER}")
    for r in removed:
        say(f"  removed {r}")
    if not purge:
        say(f"kept {paths.etc}, {paths.state} (state and models): remove them with --purge")
    return removed


def source_hash(src: Path, extras: tuple[str, ...], wheel_dirs: tuple[Path, ...]) -> str:
    """A fingerprint of what the venv is built from: source files, extras, wheel dirs."""
    h = hashlib.sha256()
    h.update(",".join(extras).encode())
    for d in wheel_dirs:
        h.update(str(d).encode())
        for w in sorted(d.glob("*.whl")):
            h.update(w.name.encode())
    for part in SOURCE_PARTS:
        base = src / part
        files = [base] if base.is_file() else sorted(
            p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(src)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def sysusers_text(src: Path, extra_groups: tuple[str, ...]) -> str:
    base = (src / "units" / f"{SERVICE}.sysusers").read_text()
    return base + "".join(f"m {USER} {g}\n" for g in extra_groups)


# ---------------------------------------------------------------- steps


def _venv(plan: Plan, src: Path, result: Result, say: Say) -> None:
    venv = plan.paths.venv
    py = venv / "bin" / "python"
    o = plan.options
    wheel_dirs = ((o.wheelhouse,) if o.wheelhouse else ()) + o.find_links
    want = source_hash(src, plan.extras, wheel_dirs)
    record = detect.read_record(plan.paths.record)
    if py.exists() and record.get("source") == want:
        say(f"python: {venv} is up to date")
        return
    if not py.exists():
        say(f"python: creating {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
    cmd = [str(py), "-m", "pip", "install", "--progress-bar", "on",
           "--disable-pip-version-check"]
    if o.wheelhouse:
        cmd += ["--no-index", "--find-links", str(o.wheelhouse)]
    for d in o.find_links:
        cmd += ["--find-links", str(d)]
    target = f"{src}[{','.join(plan.extras)}]"
    say(f"python: pip install hybrid-agent[{','.join(plan.extras)}] into {venv}"
        + (" (llama-cpp-python may compile for minutes)" if "llm" in plan.extras else ""))
    env = llama.build_env(os.environ) if "llm" in plan.extras else None
    # Pip builds the project from a copy: the source tree may be read-only or shared.
    with tempfile.TemporaryDirectory(prefix="hybrid-agent-src-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache"))
        run([*cmd, target.replace(str(src), str(copy), 1)], "pip install", stream=True,
            timeout=PIP_TIMEOUT_S, env=env)
    result.changes.append(f"python package installed ({','.join(plan.extras)})")
    if env is not None:
        llama.rebuild_with_rpc(py, env, result, say, offline=o.wheelhouse is not None)
    plan.paths.opt.mkdir(parents=True, exist_ok=True)


def _models(plan: Plan, result: Result, say: Say) -> None:
    exe = plan.paths.venv / "bin" / SERVICE
    cmd = [str(exe), "models", "fetch", "--dir", str(plan.paths.models)]
    for role in plan.roles:
        cmd += ["--role", role]
    source = plan.options.wheelhouse
    if source:
        cmd += ["--wheelhouse", str(source)]
    # An empty config: the user's may be mid-edit, and the models need none of it.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="hybrid-agent-") as empty:
        cmd += ["--config", empty.name]
        say(f"models: fetching and verifying {', '.join(plan.roles)} into {plan.paths.models}")
        out = run(cmd, "fetching the models", stream=True, timeout=PIP_TIMEOUT_S)
    if ": fetching" in out:
        result.changes.append("models fetched")
    if "llm" in plan.roles and plan.paths.config.exists():
        _remote_llm(plan, result, say)


def _remote_llm(plan: Plan, result: Result, say: Say) -> None:
    """A remote llm.model (hf://, https://) in the kept config: fetch it now; when the hub
    cannot be reached the packaged default serves, and the install says so."""
    exe = plan.paths.venv / "bin" / SERVICE
    cmd = [str(exe), "models", "fetch", "--role", "llm", "--dir", str(plan.paths.models),
           "--config", str(plan.paths.config)]
    try:
        out = run(cmd, "fetching llm.model", stream=True, timeout=PIP_TIMEOUT_S)
    except InstallError as exc:
        result.notes.append(f"llm.model could not be fetched, so the packaged default model "
                            f"serves until `hybrid-agent models fetch --role llm` succeeds: "
                            f"{str(exc).splitlines()[-1]}")
        say("models: llm.model not fetched; the packaged default model serves for now")
        return
    if "verified (" in out:
        result.changes.append("llm.model fetched")


def _bubblewrap(plan: Plan, result: Result, say: Say) -> None:
    """apt-get install bubblewrap when the plan says so; a failure only leaves the tools off.

    Whether bubblewrap is there goes into the install record, so a re-run after the
    user installed it restarts the tools unit (its sandbox probe runs at start).
    """
    if plan.tools_unit:
        result.record["bwrap"] = not plan.bwrap_missing
    if plan.bwrap_appeared:
        result.changes.append("bubblewrap is there now")
    if not plan.bwrap_via_apt:
        return
    say("installing bubblewrap with apt-get (the shell and python tools run in it)")
    apt = APT_GET
    install = [*apt, "install", "--no-install-recommends", "bubblewrap"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        try:
            run(install, "apt-get install bubblewrap", stream=True, timeout=APT_TIMEOUT_S,
                 env=env)
        except InstallError:
            # No package lists yet, or lists older than the archive (a fetch fails): as
            # one would by hand, update them and try once more. Some sources may stay
            # unreachable (update then fails); the second install says if it got enough.
            say("apt-get install failed: updating the package lists, then once more")
            with contextlib.suppress(InstallError):
                run([*apt, "update"], "apt-get update", stream=True,
                     timeout=APT_TIMEOUT_S, env=env)
            run(install, "apt-get install bubblewrap", stream=True, timeout=APT_TIMEOUT_S,
                 env=env)
    except InstallError as exc:
        say("bubblewrap could not be installed: going on without the shell and python tools")
        result.notes.append(f"the shell and python tools stay off until `apt-get install "
                            f"bubblewrap` and a re-run of install.sh: {exc}")
        return
    result.record["bwrap"] = True
    result.changes.append("bubblewrap installed")


def _user(plan: Plan, src: Path, result: Result, say: Say) -> None:
    p = plan.paths
    if write_if_changed(p.sysusers, sysusers_text(src, plan.extra_groups), 0o644):
        result.changes.append(f"wrote {p.sysusers}")
    if USER not in passwd_users(p.passwd_file):
        say(f"user: creating {USER} with systemd-sysusers")
        result.changes.append(f"created user {USER}")
    run(["systemd-sysusers", str(p.sysusers)], "creating the user")
    tmpfiles = (src / "units" / f"{SERVICE}.tmpfiles").read_text()
    if write_if_changed(p.tmpfiles, tmpfiles, 0o644):
        result.changes.append(f"wrote {p.tmpfiles}")
    run(["systemd-tmpfiles", "--create", str(p.tmpfiles)], "creating the directories")


def _config(plan: Plan, src: Path, result: Result, say: Say) -> None:
    p = plan.paths
    write_config(p.config, configfile.defaults(p.command, plan.tier, plan.port),
                 detect.read_record(p.record).get("config_default"), result,
                 f"{plan.tier} defaults, port {plan.port}")
    # A config kept from before (edited, or left by an uninstall) may name another port.
    kept = configfile.port(p.command, p.config)
    if kept is not None and kept != plan.port:
        result.port = kept
        say(f"config: {p.config} names port {kept}: the service listens there")
    default_src = src / "etc" / "default" / SERVICE
    if not p.default_file.exists():
        write(p.default_file, default_src.read_text(), 0o644)
        result.changes.append(f"wrote {p.default_file}")


def _cluster_key(plan: Plan, result: Result, say: Say) -> None:
    write_cluster_key(plan.paths.cluster_key, plan.options.join, result)


def _units(plan: Plan, src: Path, result: Result, say: Say) -> bool:
    changed = False
    wanted = [(f"{SERVICE}.service", plan.paths.unit, True),
              (f"{TOOLS_SERVICE}.service", plan.paths.tools_unit, plan.tools_unit),
              (f"{TOOLS_SERVICE}.socket", plan.paths.tools_socket, plan.tools_unit)]
    for unit, path, want in wanted:
        if want:
            text = (src / "units" / unit).read_text()
            if write_if_changed(path, text, 0o644):
                result.changes.append(f"installed {path}")
                changed = True
        elif path.exists():  # the tier changed: this tier has no such unit
            systemctl("disable", "--now", unit, check=False)
            path.unlink()
            result.changes.append(f"removed {path}")
            changed = True
    return changed


def _write_record(plan: Plan, src: Path, result: Result) -> None:
    o = plan.options
    wheel_dirs = ((o.wheelhouse,) if o.wheelhouse else ()) + o.find_links
    record = {"tier": plan.tier, "port": result.port or plan.port,
              "source": source_hash(src, plan.extras, wheel_dirs), **result.record}
    write(plan.paths.record, json.dumps(record, indent=2) + "\n", 0o644)
