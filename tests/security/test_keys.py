"""The cluster key file, its fingerprint and its join code."""

from __future__ import annotations

import os
import stat

import pytest

from appliance.cli import main
from appliance.security import keys
from appliance.security.errors import JoinCodeError, KeyFileError


def test_create_key_file_makes_32_random_bytes_mode_0600_once(tmp_path):
    path = tmp_path / "etc" / "cluster.key"
    key = keys.create_key_file(path)
    assert len(key) == keys.KEY_BYTES
    assert path.read_bytes() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.create_key_file(path) == key  # an existing key is kept
    assert keys.create_key_file(tmp_path / "other.key") != key


def test_join_code_round_trips_and_tolerates_case_and_spacing():
    key = keys.generate_key()
    code = keys.join_code(key)
    assert code.startswith("HA1-")
    assert keys.key_from_code(code) == key
    assert keys.key_from_code("  " + code.lower().replace("-", " ") + "\n") == key


def test_join_code_with_a_typo_is_refused_by_the_checksum():
    code = keys.join_code(keys.generate_key())
    i = 6
    typo = code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1:]
    with pytest.raises(JoinCodeError, match="checksum"):
        keys.key_from_code(typo)


@pytest.mark.parametrize("code, words", [("", "starts with"), ("HA1-ABCD", "characters"),
                                         ("X" * 500, "short text")])
def test_malformed_join_codes_say_what_is_wrong(code, words):
    with pytest.raises(JoinCodeError, match=words):
        keys.key_from_code(code)


def test_read_key_names_the_problem(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        keys.read_key(tmp_path / "missing.key")
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    with pytest.raises(KeyFileError, match="exactly 32 bytes"):
        keys.read_key(short)


def test_fingerprint_is_stable_short_and_differs_per_key():
    key = keys.generate_key()
    assert keys.fingerprint(key) == keys.fingerprint(key)
    assert len(keys.fingerprint(key)) == 16
    assert keys.fingerprint(key) != keys.fingerprint(keys.generate_key())
    assert key.hex()[:16] not in keys.fingerprint(key)


def test_write_key_replaces_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "cluster.key"
    path.write_bytes(b"x" * 32)
    os.chmod(path, 0o644)
    key = keys.generate_key()
    keys.write_key(path, key)
    assert path.read_bytes() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.key"]


def test_cli_pair_init_then_join_on_another_box(tmp_path, capsys):
    first = tmp_path / "first.key"
    assert main(["pair", "--key-file", str(first)]) == 1
    assert "pair --init" in capsys.readouterr().err
    assert main(["pair", "--init", "--key-file", str(first)]) == 0
    code = capsys.readouterr().out.strip()
    assert main(["pair", "--key-file", str(first)]) == 0
    assert capsys.readouterr().out.strip() == code
    second = tmp_path / "second.key"
    assert main(["join", code, "--key-file", str(second)]) == 0
    assert second.read_bytes() == first.read_bytes()
    assert stat.S_IMODE(os.stat(second).st_mode) == 0o600


def test_cli_join_refuses_to_replace_a_different_key_without_force(tmp_path, capsys):
    path = tmp_path / "cluster.key"
    old = keys.create_key_file(path)
    code = keys.join_code(keys.generate_key())
    assert main(["join", code, "--key-file", str(path)]) == 1
    assert "different key" in capsys.readouterr().err
    assert path.read_bytes() == old
    assert main(["join", code, "--key-file", str(path), "--force"]) == 0
    assert path.read_bytes() == keys.key_from_code(code)
    assert main(["join", "HA1-NOPE", "--key-file", str(path)]) == 1


def test_a_key_others_may_read_is_warned_about_and_doctor_fails_it(tmp_path, caplog):
    from appliance import doctor

    path = tmp_path / "cluster.key"
    keys.create_key_file(path)
    assert doctor.check_key(path).level == "OK"
    os.chmod(path, 0o640)
    with caplog.at_level("WARNING"):
        assert len(keys.read_key(path)) == keys.KEY_BYTES  # still used
    assert "mode 0640: other users of the box may read it" in caplog.text
    result = doctor.check_key(path)
    assert result.level == "FAIL" and f"chmod 600 {path}" == result.fix
    assert doctor.check_key(tmp_path / "missing.key").level == "WARN"
