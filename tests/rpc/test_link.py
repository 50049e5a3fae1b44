"""The RPC link on real loopback sockets: TLS with node certificates, bounded, counted.

A small echo server stands in for ggml's RPC server here (the real one is in
tests/lan/test_rpc_lan.py); everything else is the real link: LinkServer, LocalEnd,
real TLS 1.3 handshakes with node certificates endorsed by the cluster key
(appliance.security.nodetls, through the link's provider NodeCertTrust).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import sys

import pytest
from cryptography import x509

from appliance.llm.rpc import sockets, tunnel
from appliance.llm.rpc.link import LinkRefused, NodeCertTrust
from appliance.llm.rpc.tunnel import LinkError, LinkServer, LocalEnd, open_link
from appliance.security.nodetls import NodeTLS

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
# ggml's RPC HELLO: command 14, an 8-byte size, 24 bytes of transport capabilities.
HELLO = b"\x0e" + struct.pack("<Q", 24) + bytes(24)
WORKER_ID = "b" * 32
CORE_ID = "c" * 32
CORE = (CORE_ID, "core-1")
OTHER_CORE_ID = "d" * 32


@pytest.fixture
def nodes(tmp_path):
    """Node certificates (each node's own key, endorsed by a cluster key) by node id."""
    made: dict[tuple[str, bytes], NodeTLS] = {}

    def trust(node_id: str, key: bytes = KEY) -> NodeCertTrust:
        if (node_id, key) not in made:
            made[node_id, key] = NodeTLS.load(tmp_path / f"{node_id}-{key[0]}", node_id, key)
        return NodeCertTrust(made[node_id, key])

    trust.tls = made  # type: ignore[attr-defined]
    return trust


class EchoServer:
    """Stands in for ggml's RPC server on loopback: echoes, counts its connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.close_after: int | None = None

    async def start(self) -> EchoServer:
        self.server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        seen = 0
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
            seen += len(data)
            if self.close_after is not None and seen >= self.close_after:
                break
        writer.close()

    def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def rpc_server():
    echo = await EchoServer().start()
    yield echo
    echo.stop()


@pytest.fixture
async def link(rpc_server, nodes):
    """A worker's link on loopback in front of the echo server."""
    server = LinkServer(nodes(WORKER_ID), "127.0.0.1", 0, target=lambda: rpc_server.port,
                        status=lambda: {"serving": True, "mem_mb": 1234}, max_connections=3)
    await server.start()
    yield server
    await server.stop()


async def _raw(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), timeout)
    finally:
        writer.close()


async def test_a_session_carries_bytes_both_ways_and_counts_them(link, rpc_server, nodes):
    end = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", link.port, client=CORE,
                   peer_id=WORKER_ID)
    await end.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", end.local_port)
        payload = os.urandom(300_000)
        writer.write(payload)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
        assert echoed == payload
        writer.close()
        await _until(lambda: end.traffic.active == 0 and link.traffic.active == 0)
    finally:
        await end.stop()
    assert rpc_server.connections == 1
    assert end.traffic.sessions == 1 and link.traffic.sessions == 1
    assert end.traffic.bytes_sent == end.traffic.bytes_received == len(payload)
    # The worker side counts the same payload from its point of view.
    assert link.traffic.bytes_sent == link.traffic.bytes_received == len(payload)
    assert end.traffic.ended_by_peer_at == 0.0  # the local side closed first


async def test_a_probe_answers_the_workers_status_without_touching_its_rpc_server(
        link, rpc_server, nodes):
    end = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", link.port, client=CORE,
                   peer_id=WORKER_ID)
    assert await end.probe() == {"serving": True, "mem_mb": 1234, "busy": False}
    assert rpc_server.connections == 0


async def test_a_raw_tcp_client_gets_no_byte_of_rpc_and_is_counted_refused(link, rpc_server):
    answer = await _raw(link.port, HELLO)
    # A TLS server answers a non-TLS hello with at most an alert; never an RPC reply.
    assert not answer.startswith(struct.pack("<Q", 28))
    await _until(lambda: link.traffic.refused == 1)
    assert rpc_server.connections == 0
    assert "TLS" in link.traffic.last_refusal


async def test_a_node_of_another_cluster_fails_the_handshake_both_ways(link, rpc_server, nodes):
    other = nodes(CORE_ID, OTHER_KEY)  # the same node id, another cluster's endorsement
    with pytest.raises(LinkError, match="TLS"):
        await open_link(other, "127.0.0.1", link.port, f"session {CORE_ID} x", WORKER_ID)
    await _until(lambda: link.traffic.refused == 1)
    assert rpc_server.connections == 0


async def test_a_revoked_core_is_refused_by_the_worker_and_the_rest_are_not(
        link, rpc_server, nodes):
    worker_tls = nodes.tls[WORKER_ID, KEY]
    assert worker_tls.revoke(CORE_ID)
    revoked = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", link.port, client=CORE,
                       peer_id=WORKER_ID)
    with pytest.raises(LinkError):
        await revoked.probe()
    await _until(lambda: link.traffic.refused == 1)
    # Refused in the handshake itself: the worker's context carries the new list.
    assert "CERTIFICATE_VERIFY_FAILED" in link.traffic.last_refusal
    fine = LocalEnd(nodes(OTHER_CORE_ID), "worker-1", "127.0.0.1", link.port,
                    client=(OTHER_CORE_ID, "core-2"), peer_id=WORKER_ID)
    assert (await fine.probe())["serving"] is True  # no re-keying of the rest
    assert rpc_server.connections == 0


async def test_a_revoked_worker_is_refused_by_the_core(link, rpc_server, nodes):
    core = nodes(CORE_ID)
    nodes.tls[CORE_ID, KEY].revoke(WORKER_ID)
    with pytest.raises(LinkError, match="CERTIFICATE_VERIFY_FAILED"):
        await open_link(core, "127.0.0.1", link.port, f"probe {CORE_ID} core-1", WORKER_ID)


async def test_the_core_refuses_a_member_that_is_not_the_worker_it_means(
        rpc_server, nodes):
    # Another member of the cluster answering at the worker's address (a relay, a moved
    # address) is not the worker the core named, though its certificate is endorsed.
    other_member = LinkServer(nodes("e" * 32), "127.0.0.1", 0, target=lambda: rpc_server.port,
                              status=dict)
    await other_member.start()
    try:
        end = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", other_member.port,
                       client=CORE, peer_id=WORKER_ID)
        with pytest.raises(LinkError, match="TLS|not " + WORKER_ID):
            await end.probe()
    finally:
        await other_member.stop()
    assert rpc_server.connections == 0


async def test_a_core_cannot_claim_another_cores_id(link, rpc_server, nodes):
    # Who owns a worker is the id a session names: it must be the certificate's.
    liar = nodes(OTHER_CORE_ID)
    with pytest.raises(LinkError):
        await open_link(liar, "127.0.0.1", link.port, f"session {CORE_ID} core-1", WORKER_ID)
    await _until(lambda: link.traffic.refused == 1)
    assert f"not {CORE_ID}" in link.traffic.last_refusal
    assert link.owner == "" and rpc_server.connections == 0


async def test_a_tls_client_without_a_certificate_gets_nothing(link, rpc_server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port, ssl=ctx)
    writer.write(b"HA-RPC/1 session\n" + HELLO)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        data = await asyncio.wait_for(reader.read(4096), 5)
        assert data == b""  # TLS 1.3: the server's refusal may arrive as a plain close
        raise ConnectionError("closed")
    writer.close()
    await _until(lambda: link.traffic.refused == 1)
    assert rpc_server.connections == 0


async def test_a_server_that_is_not_the_cluster_is_refused_by_the_core(rpc_server, nodes):
    impostor = LinkServer(nodes(WORKER_ID, OTHER_KEY), "127.0.0.1", 0,
                          target=lambda: rpc_server.port, status=dict)
    await impostor.start()
    try:
        end = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", impostor.port,
                       client=CORE, peer_id=WORKER_ID)
        with pytest.raises(LinkError, match="TLS"):
            await end.probe()
    finally:
        await impostor.stop()


async def test_a_client_that_stays_silent_is_dropped_after_the_handshake_limit(
        link, monkeypatch):
    monkeypatch.setattr(tunnel, "HANDSHAKE_S", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    writer.close()
    assert "no answer within 0.3s" in link.traffic.last_refusal


async def test_an_oversized_preamble_is_refused(link, rpc_server, nodes):
    trust = nodes(CORE_ID)
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    await writer.start_tls(trust.client_context(WORKER_ID),
                           server_hostname=trust.server_hostname(WORKER_ID))
    writer.write(b"x" * (tunnel.MAX_LINE_BYTES + 10))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    writer.close()
    assert f"longer than {tunnel.MAX_LINE_BYTES} bytes" in link.traffic.last_refusal
    assert rpc_server.connections == 0


async def test_connections_beyond_the_cap_are_closed_at_once(link):
    held = [await asyncio.open_connection("127.0.0.1", link.port) for _ in range(3)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    assert "more than 3 connections" in link.traffic.last_refusal
    for _, w in held:
        w.close()
    writer.close()


async def test_a_session_while_the_rpc_server_is_down_is_answered_no(nodes):
    server = LinkServer(nodes(WORKER_ID), "127.0.0.1", 0, target=lambda: None,
                        status=lambda: {"serving": False})
    await server.start()
    try:
        with pytest.raises(LinkError, match="RPC server is not running"):
            await open_link(nodes(CORE_ID), "127.0.0.1", server.port, f"session {CORE_ID} x",
                            WORKER_ID)
    finally:
        await server.stop()


async def test_when_the_worker_side_closes_the_local_end_remembers_it(link, rpc_server, nodes):
    rpc_server.close_after = 10
    end = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", link.port, client=CORE,
                   peer_id=WORKER_ID)
    await end.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", end.local_port)
        writer.write(b"0123456789")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), 5) == b"0123456789"
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # the worker hung up
        writer.close()
        await _until(lambda: end.traffic.ended_by_peer_at > 0)
        assert "the worker closed" in end.traffic.last_end
    finally:
        await end.stop()


OTHER_USER = """
import os, socket, sys
os.setgid(65534); os.setuid(65534)  # nobody: not the service's user
s = socket.socket()  # a socket belongs to the user who made it
s.settimeout(5)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode())
try:
    print(repr(s.recv(100)))
except ConnectionResetError:
    print("reset")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
async def test_the_local_end_refuses_a_process_of_another_user(link, rpc_server, nodes):
    end = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", link.port, client=CORE,
                   peer_id=WORKER_ID)
    await end.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", OTHER_USER, str(end.local_port), "hello",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        assert out.decode().strip() in ("b''", "reset")  # closed, never carried
        assert end.traffic.refused == 1 and "uid 65534" in end.traffic.last_refusal
        assert rpc_server.connections == 0
    finally:
        await end.stop()


async def test_socket_owner_and_listening_read_the_kernels_table():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert sockets.listening(port)
        with socket.create_connection(("127.0.0.1", port)) as client:
            assert sockets.socket_owner(client.getsockname(), ("127.0.0.1", port)) \
                == os.geteuid()
            assert sockets.socket_owner(("127.0.0.1", 1), ("127.0.0.1", port)) is None
    finally:
        server.close()
    assert not sockets.listening(port)


def test_the_provider_names_the_peer_and_refuses_another_or_none(nodes):
    nodes(WORKER_ID)
    pem = nodes.tls[WORKER_ID, KEY].cert_path.read_bytes()
    serial = format(x509.load_pem_x509_certificate(pem).serial_number, "X")

    class VerifiedTls:  # what ssl.SSLObject.getpeercert() gives after a verified handshake
        def getpeercert(self, binary_form: bool = False) -> dict[str, str]:
            return {"serialNumber": serial}

    trust = nodes(CORE_ID)
    assert trust.peer(VerifiedTls(), WORKER_ID) == f"node {WORKER_ID}"
    assert trust.peer(VerifiedTls()) == f"node {WORKER_ID}"
    with pytest.raises(LinkRefused, match=f"not {OTHER_CORE_ID}"):
        trust.peer(VerifiedTls(), OTHER_CORE_ID)
    with pytest.raises(LinkRefused, match="no node certificate"):
        trust.peer(None)


async def _until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def test_a_worker_belongs_to_one_core_at_a_time(link, rpc_server, nodes, monkeypatch):
    monkeypatch.setattr(tunnel, "SESSION_WAIT_S", 0.3)
    mine = LocalEnd(nodes(CORE_ID), "worker-1", "127.0.0.1", link.port, client=CORE,
                   peer_id=WORKER_ID)
    other = LocalEnd(nodes(OTHER_CORE_ID), "worker-1", "127.0.0.1", link.port,
                     client=(OTHER_CORE_ID, "core-2"), peer_id=WORKER_ID)
    await mine.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", mine.local_port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        assert link.owner_name == "core-1"
        assert (await other.probe())["busy"] is True
        assert (await mine.probe())["busy"] is False
        with pytest.raises(LinkError, match="busy: another core uses this worker"):
            await open_link(nodes(OTHER_CORE_ID), "127.0.0.1", link.port,
                            f"session {OTHER_CORE_ID} core-2", WORKER_ID)
        # The same core may open more sessions (ggml opens several while loading).
        second_r, second_w = await asyncio.open_connection("127.0.0.1", mine.local_port)
        second_w.write(b"pong")
        assert await asyncio.wait_for(second_r.readexactly(4), 5) == b"pong"
        writer.close()
        second_w.close()
        await _until(lambda: link.owner == "")
        assert (await other.probe())["busy"] is False
    finally:
        await mine.stop()


async def test_a_request_without_the_cores_id_is_refused(link, nodes):
    with pytest.raises(LinkError, match="unknown request"):
        await open_link(nodes(CORE_ID), "127.0.0.1", link.port, "session", WORKER_ID)
    assert "unknown request" in link.traffic.last_refusal
