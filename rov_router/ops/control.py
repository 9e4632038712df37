"""The control socket of a running router (like birdc's): one JSON request per connection,
one JSON answer.  ``rov-router show ...`` is the client.

Requests: ``{"cmd": "rtr"}``, ``{"cmd": "neighbors"}``,
``{"cmd": "routes", "state": "invalid", "neighbor": "127.0.0.2", "limit": 1000}``,
``{"cmd": "route", "prefix": "192.0.2.0/24"}``, ``{"cmd": "vrps", "prefix": "192.0.2.0/24"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..rpki.vrp import parse_prefix
from ..status import route_view

if TYPE_CHECKING:
    from ..app import App


def default_socket() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"rov-router-{os.getuid()}.sock"


def _route_json(app: App, r) -> dict:
    return route_view(app.core, r).to_json()


def answer(app: App, req: dict) -> dict:
    cmd = req.get("cmd")
    if cmd == "rtr":
        return {"rpki": app.state_rpki()}
    if cmd == "neighbors":
        return {"neighbors": app.state_neighbors()}
    if cmd == "routes":
        state = req.get("state")
        nb = req.get("neighbor")
        limit = int(req.get("limit", 10_000))
        out = []
        total = 0
        for r in app.core.routes():
            if state and r.state != state:
                continue
            if nb and r.peer.address != nb:
                continue
            total += 1
            if len(out) < limit:
                out.append(_route_json(app, r))
        return {"routes": out, "matched": total, "truncated": total > len(out)}
    if cmd in ("route", "vrps"):
        prefix = req.get("prefix", "")
        try:
            addr, plen = parse_prefix(prefix)
        except ValueError as e:
            return {"error": str(e)}
        if cmd == "route":
            routes = [
                _route_json(app, r) for r in app.core.routes() if r.addr == addr and r.plen == plen
            ]
            return {"prefix": prefix, "routes": routes}
        covering = [
            {
                "vrp": str(v),
                "prefix": v.prefix,
                "maxLength": v.maxlen,
                "asn": v.asn,
                "sources": srcs,
            }
            for v, srcs in app.store.covering(addr, plen)
        ]
        covered = [
            {"vrp": str(v), "prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn}
            for v in app.store.covered(addr, plen)
        ]
        return {"prefix": prefix, "covering": covering, "covered": covered}
    return {"error": f"unknown command {cmd!r} (rtr, neighbors, routes, route, vrps)"}


class ControlServer:
    def __init__(self, app: App, path: Path) -> None:
        self.app = app
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            # refuse to steal a live router's socket; clean up a stale one
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(self.path))
                except OSError:
                    self.path.unlink()
                else:
                    raise RuntimeError(
                        f"another rov-router already answers on {self.path} "
                        "(use --control to choose another socket)"
                    )
        self._server = await asyncio.start_unix_server(self._conn, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                req = json.loads(line or b"{}")
                resp = (
                    answer(self.app, req)
                    if isinstance(req, dict)
                    else {"error": "expected an object"}
                )
            except ValueError as e:
                resp = {"error": f"not JSON: {e}"}
            writer.write(json.dumps(resp, default=str).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: Path, req: dict, timeout: float = 30.0) -> dict:
    """Client side: send one request, return the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)
