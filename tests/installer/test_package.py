"""installer.package: the configure step the Debian packages' postinst runs, in a temp root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from appliance import tiers
from installer import InstallError, Paths
from installer.package import Settings, choose_tier, configure, record_path

MODELS = Path(os.environ.get("HYBRID_AGENT_TEST_MODELS", "/var/cache/hybrid-agent-test/models"))
EDGE = tiers.TierChoice("edge", "2 cores, 8.0 GiB (below mid's ...)")
MID = tiers.TierChoice("mid", "8 cores, 32.0 GiB")


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """A relocated box whose models are already in place (so nothing is downloaded)."""
    p = Paths().under(tmp_path)
    p.models.mkdir(parents=True)
    for sub in ("whisper-base", "piper", "llm"):
        if not (MODELS / sub).is_dir():
            pytest.fail(f"{MODELS / sub} is missing: run `make models`")
        (p.models / sub).symlink_to(MODELS / sub)
    p.group_file.parent.mkdir(parents=True, exist_ok=True)
    p.group_file.write_text("audio:x:29:\n")  # no GPU groups: usermod is not run
    return p


def quiet(_msg: str) -> None:
    pass


def test_a_fresh_box_gets_config_key_and_record(paths: Paths) -> None:
    result = configure(paths, Settings(), EDGE, has_llm=False, say=quiet)
    text = paths.config.read_text()
    assert "tier: edge" in text and "port: 8700" in text
    assert paths.cluster_key.stat().st_mode & 0o777 == 0o600
    assert any("join other boxes with" in n for n in result.notes)
    record = json.loads(record_path(paths).read_text())
    assert record["tier"] == "edge" and record["port"] == 8700 and record["config_default"]
    again = configure(paths, Settings(), EDGE, has_llm=False, say=quiet)
    assert not again.changed


def test_a_tier_with_an_llm_is_edge_until_the_llm_package_is_there(paths: Paths) -> None:
    assert choose_tier(None, MID, llm_installed=False)[0] == "edge"
    tier, why = choose_tier("core", EDGE, llm_installed=False)
    assert tier == "edge" and "apt-get install hybrid-agent-llm" in why
    assert choose_tier("mid", EDGE, llm_installed=True) == ("mid", "asked for (detection "
                                                                  "says edge)")
    configure(paths, Settings(tier="mid", port=8123), EDGE, has_llm=False, say=quiet)
    assert "tier: edge" in paths.config.read_text()
    # The LLM package arrives: the unedited config follows the tier asked for before.
    result = configure(paths, Settings(), EDGE, has_llm=True, say=quiet)
    text = paths.config.read_text()
    assert "tier: mid" in text and "port: 8123" in text
    assert any("new defaults" in c for c in result.changes)


def test_an_edited_config_is_kept_and_the_new_defaults_go_beside_it(paths: Paths) -> None:
    configure(paths, Settings(), EDGE, has_llm=False, say=quiet)
    edited = paths.config.read_text().replace("level: info", "level: debug")
    paths.config.write_text(edited)
    result = configure(paths, Settings(tier="mid"), EDGE, has_llm=True, say=quiet)
    assert paths.config.read_text() == edited
    assert "tier: mid" in paths.config.with_name("config.yaml.new").read_text()
    assert any("config.yaml.new" in n for n in result.notes)


@pytest.mark.parametrize(("env", "named"), [
    ({"HYBRID_AGENT_TIER": "huge"}, "HYBRID_AGENT_TIER='huge'"),
    ({"HYBRID_AGENT_PORT": "99999"}, "HYBRID_AGENT_PORT='99999'"),
    ({"HYBRID_AGENT_WHEELHOUSE": "/nonexistent"}, "HYBRID_AGENT_WHEELHOUSE=/nonexistent"),
])
def test_a_bad_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(InstallError) as info:
        Settings.from_env(env)
    assert named in str(info.value)
