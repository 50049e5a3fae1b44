"""Who may use the Wyoming port: loopback and wyoming.clients get the agent, the box's
private networks get speech, everyone else nothing."""

from __future__ import annotations

import ipaddress

import pytest

from appliance.wyoming.access import AccessPolicy, Level, local_private_networks, parse_clients

LAN = [ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("fd00:1::/64")]


def _policy(*clients: str) -> AccessPolicy:
    return AccessPolicy(parse_clients(clients), lan=lambda: LAN)


@pytest.mark.parametrize("peer, level", [
    ("127.0.0.1", Level.AGENT),
    ("::1", Level.AGENT),
    ("::ffff:127.0.0.1", Level.AGENT),
    ("192.168.1.40", Level.SPEECH),
    ("fd00:1::40", Level.SPEECH),
    ("192.168.2.40", Level.NONE),  # another private network: not this box's
    ("203.0.113.7", Level.NONE),
    ("10.9.0.5", Level.AGENT),  # in wyoming.clients
    ("192.168.1.20", Level.AGENT),  # in wyoming.clients, and on the LAN
    ("::ffff:203.0.113.7", Level.NONE),
    ("not an address", Level.NONE),
    (None, Level.NONE),
])
def test_levels(peer, level):
    assert _policy("10.9.0.0/16", "192.168.1.20").level(peer) is level


def test_a_bad_clients_entry_is_named():
    with pytest.raises(ValueError, match=r"wyoming.clients\[1\]: 'kitchen'"):
        parse_clients(["192.168.1.2", "kitchen"])


def test_the_box_s_own_networks_are_private_and_not_loopback():
    nets = local_private_networks()
    assert all(net.is_private and not net.is_loopback for net in nets)
