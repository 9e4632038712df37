"""The web view's HTTP server on loopback port 0 over a real router core (no BGP sessions):
endpoints, the event stream, read-only methods, the Host check, assets in the package, and
that it reads only the status view (never imports the app)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from rov_router.web.server import WebServer, load_assets
from tests.support.core import announce
from tests.support.core import sample_status as _status


async def _get(
    port: int, path: str, method: str = "GET", host: str = "127.0.0.1", extra: str = ""
) -> tuple:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode())
    await w.drain()
    data = await asyncio.wait_for(r.read(), 10)
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(), body


def test_endpoints_stream_and_read_only(tmp_path):
    st, core, _ = _status(tmp_path)

    async def main():
        web = WebServer(st, "127.0.0.1", 0)
        url = await web.start()
        assert url == f"http://127.0.0.1:{web.port}/" and web.warning is None
        try:
            code, head, body = await _get(web.port, "/")
            assert code == 200 and b"/static/app.js" in body
            assert "default-src 'self'" in head  # no CDN can load
            for name in ("app.js", "style.css"):
                assert (await _get(web.port, f"/static/{name}"))[0] == 200
            assert (await _get(web.port, "/static/../server.py"))[0] == 404
            code, _, body = await _get(web.port, "/api/state")
            doc = json.loads(body)
            assert code == 200 and doc["status"]["counts"]["routes"] == 3
            assert {n["relation"] for n in doc["nodes"]} >= {"router", "cache", "downstream"}
            edge = doc["edges"]["127.0.0.2"]
            assert {r["prefix"] for r in edge["routes"]} == {r.prefix for r in core.routes()}
            assert doc["observers"]["65009"] == sorted(core.peers["127.0.0.9"].adj_out)
            code, _, body = await _get(web.port, "/api/routes?state=invalid")
            rows = json.loads(body)["routes"]
            assert rows and all(r["state"] == "invalid" for r in rows)
            code, _, body = await _get(web.port, f"/api/route?prefix={rows[0]['prefix']}")
            assert json.loads(body)["routes"][0]["wrong_origin"]
            code, _, body = await _get(web.port, "/api/route?prefix=nonsense")
            assert code == 400 and b"error" in body
            assert (await _get(web.port, "/api/state", "DELETE"))[0] == 405
            hdr = "X-Rov-Router: presenter\r\n"
            assert (await _get(web.port, "/api/lab/next", "POST", extra=hdr))[0] == 404
            assert (await _get(web.port, "/api/state", host="evil.example"))[0] == 403
            # the event stream: a state document at once, another when something changes
            r, w = await asyncio.open_connection("127.0.0.1", web.port)
            w.write(f"GET /events HTTP/1.1\r\nHost: localhost:{web.port}\r\n\r\n".encode())
            await w.drain()
            first = await asyncio.wait_for(r.readuntil(b"retry: 1000\n\n"), 10)
            assert b"text/event-stream" in first
            ev = await asyncio.wait_for(r.readuntil(b"\n\n"), 10)
            assert ev.startswith(b"event: state\ndata: ")
            seq = json.loads(ev.split(b"data: ", 1)[1])["seq"]
            core.feed_line(announce("10.1.0.0/16", [65001, 65005]))
            for _ in range(5):  # the counts may follow a document later (at most 0.5 s)
                ev = await asyncio.wait_for(r.readuntil(b"\n\n"), 2)
                doc = json.loads(ev.split(b"data: ", 1)[1])
                if doc["status"]["counts"]["routes"] == 4:
                    break
            assert doc["seq"] > seq and doc["status"]["counts"]["routes"] == 4
            assert any(e.get("prefix") == "10.1.0.0/16" for e in doc["events"])
            w.close()
        finally:
            await web.close()

    asyncio.run(main())


def test_presenter_controls_only_when_given(tmp_path):
    st, _, _ = _status(tmp_path)
    calls = []

    async def main():
        web = WebServer(st, "127.0.0.1", 0, controls={"next": lambda: calls.append("next")})
        await web.start()
        try:
            hdr = "X-Rov-Router: presenter\r\n"
            assert (await _get(web.port, "/api/lab/next", "POST"))[0] == 403  # no header
            assert (await _get(web.port, "/api/lab/next", "POST", extra=hdr))[0] == 200
            assert (await _get(web.port, "/api/lab/reboot", "POST", extra=hdr))[0] == 404
        finally:
            await web.close()

    asyncio.run(main())
    assert calls == ["next"]


def test_a_non_loopback_address_warns(tmp_path):
    st, _, _ = _status(tmp_path)
    assert "not on loopback" in (WebServer(st, "0.0.0.0", 0).warning or "")
    assert WebServer(st, "::1", 0).warning is None


def test_assets_ship_in_the_package_and_the_web_reads_only_the_view():
    assert {"index.html", "app.js", "style.css"} <= set(load_assets())
    code = (
        "import sys, rov_router.web.server, rov_router.status; "
        "bad = [m for m in sys.modules if m in ('rov_router.app', 'rov_router.cli')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_bad_web_address_is_refused():
    # (--step without --web is the terminal presenter mode: tested in tests/scenarios)
    from tests.support.env import run_cli

    r = run_cli("run", "--config", "x.toml", "--web", "nonsense")
    assert r.returncode == 2 and "expected HOST:PORT" in r.stderr


def test_route_search_answers_like_the_status_view_in_slices(tmp_path):
    """/api/routes on a large table: the same rows and totals as Status.routes, the search
    hands the loop back between slices (slice 0 here: after every 256 routes), and without a
    state or prefix filter nothing is searched at all."""
    from rov_router.status import RouteFilter
    from tests.support.core import announce, withdraw

    st, core, _ = _status(tmp_path)
    for i in range(2100):
        core.feed_line(announce(f"10.{i // 256}.{i % 256}.0/24", [65001, 65005]))
    core.feed_line(withdraw("10.3.7.0/24"))

    async def main():
        web = WebServer(st, "127.0.0.1", 0)
        web.scan_slice = 0.0
        await web.start()
        try:
            for q, flt in (
                ("limit=50", RouteFilter()),
                ("neighbor=127.0.0.2&limit=5", RouteFilter(neighbor="127.0.0.2")),
                ("prefix=10.3.&limit=40", RouteFilter(prefix="10.3.")),
                ("state=invalid", RouteFilter(state="invalid")),
                ("state=not-found&prefix=.7.", RouteFilter(state="not-found", prefix=".7.")),
            ):
                before = web.scan_yields
                code, _, body = await _get(web.port, f"/api/routes?{q}")
                doc = json.loads(body)
                limit = int(dict(x.split("=") for x in q.split("&")).get("limit", 200))
                rows, total = st.routes(flt, limit)
                assert code == 200 and doc["matched"] == total, q
                assert doc["routes"] == [r.to_json() for r in rows], q
                searched = bool(flt.state or flt.prefix)
                assert (web.scan_yields > before) == searched, q
        finally:
            await web.close()

    asyncio.run(main())
