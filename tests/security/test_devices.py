"""Paired devices: one-time codes, hashed tokens, revocation (appliance.security.devices)."""

from __future__ import annotations

import pytest

from appliance.security.devices import MAX_CODE_FAILURES, DeviceError, DeviceStore


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def test_a_code_gives_one_device_once_and_only_digests_are_stored(tmp_path):
    store = DeviceStore(tmp_path)
    code = store.add_pairing("anna-phone")
    assert len(code) == 9 and code[4] == "-"
    device, token = store.redeem(code.lower().replace("-", " "))  # typed sloppily
    assert device.name == "anna-phone"
    assert store.authenticate(token) == device
    assert store.authenticate(token + "x") is None and store.authenticate("nope") is None
    with pytest.raises(DeviceError, match="wrong, used or expired"):
        store.redeem(code)
    stored = store.path.read_text()
    assert token not in stored and code.replace("-", "") not in stored
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"


def test_a_code_expires(tmp_path):
    clock = Clock()
    store = DeviceStore(tmp_path, clock=clock)
    code = store.add_pairing("tv")
    clock.t += 601
    with pytest.raises(DeviceError):
        store.redeem(code)


def test_too_many_wrong_codes_void_every_waiting_code(tmp_path):
    store = DeviceStore(tmp_path)
    code = store.add_pairing("laptop")
    for _ in range(MAX_CODE_FAILURES):
        with pytest.raises(DeviceError):
            store.redeem("AAAA-AAAA")
    with pytest.raises(DeviceError):
        store.redeem(code)


def test_another_process_sees_a_revocation_and_names_are_checked(tmp_path):
    daemon, cli = DeviceStore(tmp_path), DeviceStore(tmp_path)
    device, token = daemon.redeem(cli.add_pairing("phone"))
    assert daemon.authenticate(token) == device
    assert [d.name for d in cli.devices()] == ["phone"]
    cli.revoke("phone")
    daemon._checked = -10.0  # (its once-a-second look is due)
    assert daemon.authenticate(token) is None
    with pytest.raises(DeviceError, match="no paired device"):
        cli.revoke("phone")
    for bad in ("", " ", "x" * 65):
        with pytest.raises(DeviceError, match="device name"):
            cli.add_pairing(bad)
