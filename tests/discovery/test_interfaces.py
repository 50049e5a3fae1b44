"""Interface choice: virtual devices skipped by default, explicit lists honoured."""

from __future__ import annotations

from appliance.discovery import interfaces


def test_virtual_devices_are_skipped_by_default():
    for name in ("docker0", "veth12ab", "br-5f3c", "virbr0", "tun0", "tap1", "wg0", "lo"):
        assert interfaces.is_virtual(name), name
    for name in ("eth0", "enp3s0", "wlan0", "wlp2s0"):
        assert not interfaces.is_virtual(name), name


def test_an_explicit_list_is_honoured_even_for_loopback():
    addrs = interfaces.nic_addresses(["lo"], "all")
    assert {a.iface for a in addrs} == {"lo"}
    assert "127.0.0.1" in [a.address for a in addrs]
    assert all(a.iface != "lo" for a in interfaces.nic_addresses([], "all"))


def test_ip_version_filters_and_zeroconf_gets_v4_addresses_and_v6_indexes():
    v4 = interfaces.nic_addresses(["lo"], "v4")
    assert v4 and all(a.version == 4 for a in v4)
    both = interfaces.nic_addresses(["lo"], "all")
    zc = interfaces.zeroconf_interfaces(both)
    assert "127.0.0.1" in zc
    if any(a.version == 6 for a in both):
        assert any(isinstance(x, int) for x in zc)
    assert interfaces.advertised(both)[0] == "127.0.0.1"
