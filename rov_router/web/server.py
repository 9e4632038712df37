"""A small read-only HTTP server on the router's asyncio loop (stdlib only).

GET  /                 the page (static/index.html), /static/NAME its assets (all in the package)
GET  /api/state        the current view as JSON (the same document the event stream sends)
GET  /api/routes       ?state=&neighbor=&prefix=&limit=  routes with verdict and reason
GET  /api/route        ?prefix=&neighbor=  route details: covering VRPs split, ASPA hops
GET  /events           Server-Sent Events: ``state`` documents as the view changes
POST /api/lab/next | /api/lab/pause | /api/lab/play   presenter controls, only with --step

Everything is computed from :class:`rov_router.status.Status` on demand and shared by all
clients; a full table is sent as counts plus the latest routes per neighbor.  One request per
connection, bounded header size, bounded number of event-stream clients, a write that cannot
drain within 10 s drops the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import time
from collections.abc import Callable
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import orjson

from ..status import RouteFilter, Status, Tally, route_view, tally

log = logging.getLogger("rov_router.web")

MAX_HEADER = 16 * 1024
MAX_STREAMS = 32
#: a route search over a full table runs in slices this long, the loop getting a turn between
SCAN_SLICE = 0.01
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_assets() -> dict[str, bytes]:
    """Every file in static/ (shipped as package data), by name."""
    out = {}
    for f in resources.files("rov_router.web").joinpath("static").iterdir():
        if f.is_file() and "." + f.name.rsplit(".", 1)[-1] in STATIC_TYPES:
            out[f.name] = f.read_bytes()
    return out


class WebServer:
    def __init__(
        self,
        status: Status,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        controls: dict[str, Callable[[], None]] | None = None,
        interval: float = 0.2,
    ) -> None:
        self.status = status
        self.host = host
        self.port = port
        self.controls = controls or {}
        self.interval = interval
        self.assets = load_assets()
        self._server: asyncio.AbstractServer | None = None
        self._streams: set[asyncio.Task] = set()
        self._sampler: asyncio.Task | None = None
        self._doc: bytes = b""
        self._doc_seq = -1
        self._doc_time = 0.0
        self._cost = 0.0  # seconds of the last tally
        self._doc_cost = 0.0  # seconds of the last document without its tally
        self._last_tally: Tally | None = None
        self._counts = None
        self._counts_seq = -1
        self._counts_time = 0.0
        self.sent = 0  # state documents written to event streams (benchmarks read it)
        self.scan_slice = SCAN_SLICE
        self.scan_yields = 0  # turns given to the loop by route searches (tests read it)

    @property
    def url(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}/"

    @property
    def warning(self) -> str | None:
        if is_loopback(self.host):
            return None
        return (
            f"the web view listens on {self.host}, not on loopback: anyone who can reach it "
            "sees the router's routes and RPKI data"
        )

    async def start(self) -> str:
        try:
            self._server = await asyncio.start_server(
                self._conn, self.host, self.port, limit=MAX_HEADER
            )
        except OSError as e:
            raise RuntimeError(f"web view: cannot listen on {self.host}:{self.port}: {e}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        self._sampler = asyncio.ensure_future(self._sample_loop())
        if self.warning:
            log.warning(self.warning)
        return self.url

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        for t in list(self._streams):
            t.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    # ---- the shared document -------------------------------------------------------------------

    def _tally(self) -> Tally:
        """Counts when the feed moved (the neighbors' running tallies: microseconds); should
        they ever take 5 ms or more, at most every ``8 x cost`` and 0.5 s, so viewers take at
        most about a tenth of the router's loop."""
        st = self.status
        now = time.monotonic()
        if self._counts is None or (
            st.feed.seq != self._counts_seq
            and (self._cost < 0.005 or now - self._counts_time >= max(0.5, 8 * self._cost))
        ):
            t0 = time.perf_counter()
            self._counts = tally(st.core, loc_rib=False)  # the page does not show it
            self._cost = time.perf_counter() - t0
            self._counts_seq, self._counts_time = st.feed.seq, now
        return self._counts

    def document(self) -> bytes:
        """The state document (JSON bytes), shared by all viewers: rebuilt when the feed
        moved or its counts were stale, at most every ``max(interval / 2, 3 x its cost)``."""
        st = self.status
        now = time.monotonic()
        if self._doc and (
            (st.feed.seq == self._doc_seq and self._counts_seq == st.feed.seq)
            or now - self._doc_time < max(self.interval / 2, 3 * self._doc_cost)
        ):
            return self._doc
        t0 = time.perf_counter()
        t = self._tally()
        fresh = t is not self._last_tally
        t1 = time.perf_counter()
        snap = st.snapshot(t)
        recent = list(st.feed.since(st.feed.seq - 40))
        doc = {
            "seq": st.feed.seq,
            "route_events": st.feed.route_events,
            "status": snap.to_json(),
            "nodes": [_node(n) for n in st.nodes()],
            "edges": st.edge_routes(per_peer=t.per_peer),
            "observers": {str(k): v for k, v in st.observer_tables().items()},
            "lab": st.lab.to_json() if st.lab is not None else None,
            "series": list(st.feed.series)[-300:],
            "rpki_changes": list(st.feed.rpki_changes)[-10:],
            "events": [{"seq": e.seq, "time": e.time, "kind": e.kind, **e.data} for e in recent],
            "presenter": bool(self.controls),
        }
        self._doc = orjson.dumps(doc)
        self._doc_seq, self._doc_time = st.feed.seq, now
        self._doc_cost = time.perf_counter() - (t1 if fresh else t0)
        self._last_tally = t
        return self._doc

    async def _sample_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.status.feed.sample(self._tally().counts)
            await asyncio.sleep(max(1.0, 20 * self._cost))

    # ---- HTTP ----------------------------------------------------------------------------------

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError, OSError):
            writer.close()
            return
        except ValueError:
            writer.close()
            return
        try:
            await self._handle(head, reader, writer)
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            pass
        except Exception:  # a bug in one request must not stop the router
            log.exception("web view: request failed")
            with contextlib.suppress(Exception):
                await self._send(writer, 500, b"internal error\n", "text/plain")
        finally:
            writer.close()

    async def _handle(self, head: bytes, reader, writer) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await self._send(writer, 400, b"bad request line\n", "text/plain")
            return
        method, target, _ = parts
        headers = {}
        for ln in lines[1:]:
            k, sep, v = ln.partition(":")
            if sep:
                headers[k.strip().lower()] = v.strip()
        if is_loopback(self.host) and not _host_ok(headers.get("host", "")):
            # DNS rebinding: a page elsewhere must not read a loopback-only view
            await self._send(writer, 403, b"unexpected Host header\n", "text/plain")
            return
        url = urlsplit(target)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path
        if method == "POST":
            if headers.get("x-rov-router") != "presenter":
                # a custom header: another site's page cannot send it without a CORS preflight,
                # which this server never grants
                await self._send(writer, 403, b"missing X-Rov-Router header\n", "text/plain")
                return
            name = path.removeprefix("/api/lab/")
            if name == path or name not in self.controls:
                await self._send(
                    writer, 404, b"no such control (start with --step)\n", "text/plain"
                )
                return
            self.controls[name]()
            await self._send(writer, 200, b'{"ok": true}', "application/json")
            return
        if method != "GET":
            await self._send(writer, 405, b"read-only: GET only\n", "text/plain")
            return
        if path in ("/", "/index.html"):
            await self._send(writer, 200, self.assets["index.html"], STATIC_TYPES[".html"])
        elif path.startswith("/static/"):
            name = path.removeprefix("/static/")
            body = self.assets.get(name)
            if body is None:
                await self._send(writer, 404, b"not found\n", "text/plain")
            else:
                await self._send(writer, 200, body, STATIC_TYPES["." + name.rsplit(".", 1)[-1]])
        elif path == "/api/state":
            await self._send(writer, 200, self.document(), "application/json")
        elif path == "/api/routes":
            try:
                limit = min(max(int(q.get("limit", 200)), 1), 5000)
            except ValueError:
                limit = 200
            flt = RouteFilter(q.get("state", ""), q.get("neighbor", ""), q.get("prefix", ""))
            rows, total = await self.routes(flt, limit)
            body = {"routes": [r.to_json() for r in rows], "matched": total}
            await self._send(writer, 200, orjson.dumps(body), "application/json")
        elif path == "/api/route":
            try:
                ds = self.status.details(q.get("prefix", ""), q.get("neighbor", ""))
            except ValueError as e:
                await self._send(writer, 400, orjson.dumps({"error": str(e)}), "application/json")
                return
            body = {"prefix": q.get("prefix", ""), "routes": [d.to_json() for d in ds]}
            await self._send(writer, 200, orjson.dumps(body), "application/json")
        elif path == "/events":
            await self._stream(writer)
        else:
            await self._send(writer, 404, b"not found\n", "text/plain")

    async def routes(self, flt: RouteFilter, limit: int) -> tuple[list, int]:
        """What :meth:`Status.routes` answers, without holding the router's loop: with no
        state or prefix filter the total is the neighbors' counts and only ``limit`` routes
        are read; otherwise a snapshot of the routes (taken at C speed) is searched in slices
        of ``scan_slice`` s (the page asks about once a second while a full table flows)."""
        core = self.status.core
        peers = [p for p in core.peers.values() if not flt.neighbor or p.address == flt.neighbor]
        if not flt.state and not flt.prefix:
            total = sum(len(p.adj_in) for p in peers)
            first = itertools.islice(
                itertools.chain.from_iterable(p.adj_in.values() for p in peers), limit
            )
            return [route_view(core, r) for r in first], total
        snapshot = list(itertools.chain.from_iterable(p.adj_in.values() for p in peers))
        out: list = []
        total = 0
        match = flt.match
        clock = time.perf_counter
        end = clock() + self.scan_slice
        for i, r in enumerate(snapshot):
            if match(r):
                total += 1
                if len(out) < limit:
                    out.append(route_view(core, r))
            if not i & 255 and clock() >= end:
                self.scan_yields += 1
                await asyncio.sleep(0)
                end = clock() + self.scan_slice
        return out, total

    async def _send(self, writer, code: int, body: bytes, ctype: str) -> None:
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(
            code, "Error"
        )
        writer.write(
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Security-Policy: {CSP}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await asyncio.wait_for(writer.drain(), 10)

    async def _stream(self, writer) -> None:
        if len(self._streams) >= MAX_STREAMS:
            await self._send(writer, 503, b"too many viewers\n", "text/plain")
            return
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
                b"Connection: keep-alive\r\n\r\nretry: 1000\n\n"
            )
            last_doc, last_sent = b"", 0.0
            while True:
                doc = self.document()
                now = time.monotonic()
                if doc is not last_doc or now - last_sent > 5.0:
                    writer.write(b"event: state\ndata: " + doc + b"\n\n")
                    await asyncio.wait_for(writer.drain(), 10)
                    self.sent += 1
                    last_doc, last_sent = doc, now
                await asyncio.sleep(self.interval)
        finally:
            self._streams.discard(task)


def _node(n) -> dict:
    return {
        "id": n.id,
        "asn": n.asn,
        "name": n.name,
        "relation": n.relation,
        "address": n.address,
    }


def _host_ok(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return is_loopback(name)
