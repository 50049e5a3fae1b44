"""The peer registry: announcements, goodbyes, selection order, mark_down, static peers."""

from __future__ import annotations

from appliance.discovery.browse import Announcement
from appliance.discovery.registry import PeerRegistry, peer_url
from appliance.discovery.txt import parse_txt


def ann(pid: str, *, roles: str = "llm", models: str = "m1", load: str = "0/4",
        addr: str = "10.0.0.1", port: int = 8700, kf: str = "f" * 16) -> Announcement:
    return Announcement(service_name=f"{pid}._hybrid-agent._tcp.local.", instance=pid,
                        addresses=(addr,), port=port,
                        txt=parse_txt({b"id": pid.encode(), b"tier": b"core",
                                       b"roles": roles.encode(), b"models": models.encode(),
                                       b"load": load.encode(), b"kf": kf.encode(), b"v": b"1"}))


def usable(reg: PeerRegistry, *ids: str) -> None:
    for pid in ids:
        p = reg.get(pid)
        assert p is not None
        p.trusted = p.healthy = True


def test_select_returns_only_trusted_healthy_peers_with_the_role_and_model():
    reg = PeerRegistry(own_id="me")
    for pid, roles, models in (("a", "llm", "m1"), ("b", "tools", ""), ("c", "llm", "m2"),
                               ("d", "llm", "m1")):
        reg.announce(ann(pid, roles=roles, models=models))
    usable(reg, "a", "b", "c")  # d announced but never proved the key
    assert [p.id for p in reg.select("llm")] == ["a", "c"]
    assert [p.id for p in reg.select("llm", "m2")] == ["c"]
    assert [p.id for p in reg.select("tools")] == ["b"]
    assert reg.select("world") == []


def test_select_orders_by_load_then_round_trip_time():
    reg = PeerRegistry()
    reg.announce(ann("busy", load="3/4"))
    reg.announce(ann("slow", load="0/4"))
    reg.announce(ann("fast", load="0/4"))
    usable(reg, "busy", "slow", "fast")
    reg.get("slow").rtt_s, reg.get("fast").rtt_s, reg.get("busy").rtt_s = 0.2, 0.01, 0.001
    assert [p.id for p in reg.select("llm")] == ["fast", "slow", "busy"]


def test_mark_down_removes_a_peer_from_selection_and_wakes_the_prober():
    reg = PeerRegistry()
    woken: list[str] = []
    reg.on_change = woken.append
    reg.announce(ann("a"))
    reg.announce(ann("b"))
    usable(reg, "a", "b")
    woken.clear()
    reg.mark_down("a")
    assert [p.id for p in reg.select("llm")] == ["b"]
    assert woken == ["a"]


def test_own_announcement_is_ignored_and_a_goodbye_drops_the_peer():
    reg = PeerRegistry(own_id="me")
    assert reg.announce(ann("me")) is None
    reg.announce(ann("a"))
    assert reg.lost("a._hybrid-agent._tcp.local.").id == "a"
    assert reg.get("a") is None


def test_an_announcement_changes_nothing_a_trusted_peer_proved_and_asks_for_a_proof():
    reg = PeerRegistry()
    woken = []
    reg.on_change = woken.append
    reg.announce(ann("a"))
    usable(reg, "a")
    woken.clear()
    before = reg.get("a").summary()
    reg.announce(ann("a", load="3/4"))  # other facts: a fresh proof, nothing else
    assert reg.get("a").summary() == before and woken == ["a"]
    reg.announce(ann("a", addr="10.0.0.9"))  # another address: proved there before use
    peer = reg.get("a")
    assert peer.trusted and peer.url == before["url"]
    assert peer.candidate_url == "https://10.0.0.9:8700" and woken == ["a", "a"]
    reg.announce(ann("a", kf="e" * 16))
    assert reg.get("a").summary() == before
    # A goodbye (anyone can send one) only asks for a probe too.
    assert reg.lost("a._hybrid-agent._tcp.local.") is None and reg.get("a") is not None


def test_an_untrusted_peer_is_listed_with_what_it_announces():
    reg = PeerRegistry()
    reg.announce(ann("a"))
    reg.announce(ann("a", addr="10.0.0.9", load="2/4"))
    peer = reg.get("a")
    assert not peer.trusted and peer.url == "https://10.0.0.9:8700" and peer.load == 0.5


def test_static_peers_come_from_a_verified_answer_and_survive_goodbyes():
    reg = PeerRegistry(own_id="me")
    answer = {"id": "s", "name": "core-s", "tier": "core", "roles": "llm,tools", "models": "m",
              "load": "1/2"}
    p = reg.add_static("https://10.0.0.7:8700", answer)
    assert p.trusted and p.source == "static" and p.load == 0.5
    assert [x.id for x in reg.select("tools")] == ["s"]
    assert reg.add_static("https://10.0.0.8:8700", {"id": "me"}) is None


def test_peer_url_prefers_ipv4_and_brackets_ipv6():
    assert peer_url(["fe80::1%eth0", "10.1.2.3"], 80) == "https://10.1.2.3:80"
    assert peer_url(["fe80::1%eth0", "2001:db8::5"], 8700) == "https://[2001:db8::5]:8700"
    assert peer_url(["fe80::1%eth0"], 8700) is None


def test_hostile_txt_values_are_cleaned_and_capped():
    txt = parse_txt({b"id": b"a\x1b[31m" + b"x" * 1000, b"roles": b",".join([b"r"] * 100),
                     b"load": b"-5/0", b"models": None, b"\xff\xfe": b"\xff"})
    assert "\x1b" not in txt.id and len(txt.id) <= 128
    assert len(txt.roles) == 16
    assert txt.load == 0.0 and txt.models == ()


def test_an_rpc_workers_port_and_memory_come_from_its_answer_not_the_air():
    reg = PeerRegistry()
    woken = []
    reg.on_change = woken.append
    rpc = {b"rpc": b"8702", b"mem": b"2048"}
    first = ann("w", roles="rpc")
    reg.announce(Announcement(first.service_name, first.instance, first.addresses, first.port,
                              parse_txt({**_props(first), **rpc})))
    peer = reg.get("w")
    assert (peer.rpc_port, peer.mem_mb) == (8702, 2048)  # untrusted: what it announces
    peer.trusted = peer.healthy = True
    proved = {"id": "w", "tier": "core", "roles": "rpc", "models": "m1", "load": "0/4",
              "kf": "f" * 16, "v": "1", "rpc": "8702", "mem": "4096"}
    reg.apply_answer(peer, proved)
    assert peer.summary()["rpc_port"] == 8702 and peer.summary()["mem_mb"] == 4096
    woken.clear()
    same = {k.encode(): v.encode() for k, v in proved.items()}
    reg.announce(Announcement(first.service_name, first.instance, first.addresses, first.port,
                              parse_txt(same)))
    assert woken == []  # nothing new: no proof needed
    # A record that moves the link to another port changes nothing until a proof says so.
    reg.announce(Announcement(first.service_name, first.instance, first.addresses, first.port,
                              parse_txt({**same, b"rpc": b"9999"})))
    assert (peer.rpc_port, peer.mem_mb) == (8702, 4096) and woken == ["w"]


def _props(a: Announcement) -> dict[bytes, bytes]:
    t = a.txt
    return {b"id": t.id.encode(), b"tier": t.tier.encode(), b"roles": ",".join(t.roles).encode(),
            b"models": ",".join(t.models).encode(), b"load": b"0/4", b"kf": t.kf.encode(),
            b"v": t.version.encode()}
