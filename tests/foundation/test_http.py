"""/health across startup, /metrics as Prometheus text, /api/status fields, error shape."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from appliance import config as config_mod
from appliance.daemon import Daemon
from appliance.node import Component
from appliance.systemd import Notifier
from tests.support.daemon import free_port, minimal_config
from tests.support.notify import NotifySocket

STATUS_FIELDS = {"id", "name", "tier", "roles", "version", "uptime_s", "ready", "components",
                 "peers", "status", "phase", "inflight"}


class HeldStart(Component):
    """A component whose start waits until the test lets it finish."""

    name = "held"

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def start(self) -> None:
        self.entered.set()
        await self.release.wait()

    def describe(self) -> dict[str, object]:
        return {"loaded": self.release.is_set()}


async def test_health_goes_503_then_200_across_startup(tmp_path):
    port = free_port()
    cfg = config_mod.build(minimal_config(tmp_path, port), env={})
    sock = NotifySocket(tmp_path / "n.sock")
    daemon = Daemon(cfg, Notifier(env={"NOTIFY_SOCKET": str(sock.path)}))
    held = HeldStart()
    daemon.add_component(held)
    task = asyncio.create_task(daemon.run())
    url = f"http://127.0.0.1:{port}/health"
    try:
        await asyncio.wait_for(held.entered.wait(), 10)
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                body = await r.json()
                assert r.status == 503
                assert body["ready"] is False and body["status"] == "loading held"
            # The port is bound and answers, but a component is still loading: no READY=1 yet.
            sock.take_pending()
            assert "READY=1" not in sock.lines(), sock.lines()
            # While loading, systemd is asked for more start time.
            assert any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in sock.lines()) or \
                "EXTEND_TIMEOUT_USEC" in await sock.wait_for("EXTEND_TIMEOUT_USEC=", 5)
            held.release.set()
            await sock.wait_for("READY=1", 10)
            async with s.get(url) as r:
                body = await r.json()
                assert r.status == 200
                assert body["status"] == "ok" and body["ready"] is True
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 15) == 0
        sock.close()


class BrokenStart(Component):
    """A component whose start fails, saying that retrying cannot help (exit status 3)."""

    name = "broken"

    async def start(self) -> None:
        err = RuntimeError("the model crashed last time")
        err.exit_status = 3  # type: ignore[attr-defined]
        raise err

    def describe(self) -> dict[str, object]:
        return {}


async def test_a_failed_start_leaves_its_cause_as_the_last_status(tmp_path):
    """`systemctl status` after a failed start shows why, not "stopping"."""
    cfg = config_mod.build(minimal_config(tmp_path, free_port()), env={})
    sock = NotifySocket(tmp_path / "n.sock")
    daemon = Daemon(cfg, Notifier(env={"NOTIFY_SOCKET": str(sock.path)}))
    daemon.add_component(BrokenStart())
    try:
        assert await asyncio.wait_for(daemon.run(), 15) == 3
        sock.take_pending()
        statuses = [line for line in sock.lines() if line.startswith("STATUS=")]
        assert "READY=1" not in sock.lines()
        assert statuses[-1] == ("STATUS=failed: broken failed to start: "
                                "the model crashed last time"), statuses
        assert "STOPPING=1" in sock.lines()
    finally:
        sock.close()


async def test_health_is_503_while_stopping(tmp_path):
    port = free_port()
    cfg = config_mod.build(minimal_config(tmp_path, port), env={})
    sock = NotifySocket(tmp_path / "n.sock")
    daemon = Daemon(cfg, Notifier(env={"NOTIFY_SOCKET": str(sock.path)}))
    task = asyncio.create_task(daemon.run())
    try:
        await sock.wait_for("READY=1", 10)
        daemon.node.begin_request()  # a request in flight holds the drain open
        daemon.request_stop()
        await sock.wait_for("STOPPING=1", 10)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/health") as r:
                assert r.status == 503
                assert (await r.json())["status"] == "stopping"
            async with s.get(f"http://127.0.0.1:{port}/api/nothing") as r:
                assert r.status == 503  # new work is refused while draining
        daemon.node.end_request()
        assert await asyncio.wait_for(task, 15) == 0
    finally:
        sock.close()


async def test_metrics_parse_as_prometheus_text(daemon_factory):
    d = await daemon_factory()
    async with aiohttp.ClientSession() as s:
        for _ in range(3):
            async with s.get(d.url + "/api/status") as r:
                assert r.status == 200
        async with s.get(d.url + "/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "process_resident_memory_bytes" in families
    requests = families["hybrid_agent_http_requests"]
    counted = [s for s in requests.samples if s.name == "hybrid_agent_http_requests_total"
               and s.labels.get("route") == "/api/status"]
    assert counted and counted[0].value == 3
    latency = families["hybrid_agent_http_request_duration_seconds"]
    assert any(s.labels.get("route") == "/api/status" for s in latency.samples)


async def test_api_status_has_every_field(daemon_factory):
    d = await daemon_factory()
    status, body = await d.get_json("/api/status")
    assert status == 200
    assert STATUS_FIELDS <= set(body), STATUS_FIELDS - set(body)
    assert body["name"] == "test-node" and body["tier"] == "edge" and body["ready"] is True
    assert len(body["id"]) == 32 and body["uptime_s"] >= 0
    assert isinstance(body["roles"], list) and isinstance(body["components"], dict)


async def test_errors_are_json_with_message_type_code(daemon_factory):
    d = await daemon_factory()
    async with aiohttp.ClientSession() as s:
        async with s.get(d.url + "/no/such/route") as r:
            assert r.status == 404
            err = (await r.json())["error"]
        async with s.post(d.url + "/health") as r:
            assert r.status == 405
            err405 = (await r.json())["error"]
    assert set(err) >= {"message", "type", "code"}
    assert err["type"] == "not_found_error"
    assert err405["message"]


async def test_node_id_is_stable_across_restarts(tmp_path, daemon_factory):
    d1 = await daemon_factory()
    _, first = await d1.get_json("/api/status")
    await d1.stop()
    state_dir = d1.config["node"]["state_dir"]
    d2 = await daemon_factory(node={"state_dir": state_dir})
    _, second = await d2.get_json("/api/status")
    assert first["id"] == second["id"]


async def test_port_in_use_is_a_clear_startup_failure(daemon_factory):
    d1 = await daemon_factory()
    with __import__("pytest").raises(RuntimeError) as exc:
        await daemon_factory(http={"port": d1.port})
    assert "cannot listen on 127.0.0.1" in str(exc.value)


MAX_BODY = 1024


async def test_request_bodies_are_bounded_by_max_body_bytes(daemon_factory):
    """A body over http.max_body_bytes is a JSON 413 naming the limit, however it is framed."""
    d = await daemon_factory(http={"max_body_bytes": MAX_BODY})
    big = b'{"text": "' + b"a" * (2 * MAX_BODY) + b'"}'

    async def chunked():  # no Content-Length: the limit must hold on the bytes that arrive
        for i in range(0, len(big), 256):
            yield big[i:i + 256]

    json_ct = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as s:
        for framing, data in (("content-length", big), ("chunked", chunked())):
            async with s.post(d.url + "/api/chat", data=data, headers=json_ct) as r:
                sent = r.request_info.headers
                if framing == "chunked":
                    assert sent.get("Transfer-Encoding") == "chunked" and \
                        "Content-Length" not in sent
                else:
                    assert sent["Content-Length"] == str(len(big))
                assert r.status == 413, (framing, await r.text())
                err = (await r.json())["error"]
            assert set(err) >= {"message", "type", "code"}, err
            assert err["code"] == "body_too_large" and err["type"] == "invalid_request_error"
            assert f"larger than {MAX_BODY} bytes" in err["message"], err
        # A body under the limit is read (whatever the agent then answers, it is not a 413).
        small = b'{"text": "hello"}'
        async with s.post(d.url + "/api/chat", data=small, headers=json_ct) as r:
            assert r.status != 413
            await r.read()
