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
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..rpki.vrp import parse_prefix
from ..status import route_view

if TYPE_CHECKING:
    from ..app import App


class ControlSocketError(ValueError):
    """The control socket (or its directory) cannot be trusted or is taken."""


def default_socket(*, create: bool = False) -> Path:
    """``$XDG_RUNTIME_DIR/rov-router-UID.sock``; without XDG_RUNTIME_DIR (root, cron,
    containers) ``/tmp/rov-router-UID/control.sock`` in a private directory (mode 0700, ours),
    as OpenSSH and tmux do: nobody else can put a socket where `show` looks."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / f"rov-router-{os.getuid()}.sock"
    d = Path(tempfile.gettempdir()) / f"rov-router-{os.getuid()}"
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)
    if create or os.path.lexists(d):
        check_private_dir(d)
    return d / "control.sock"


def check_private_dir(d: Path) -> None:
    """Raise :class:`ControlSocketError` unless ``d`` is a real directory owned by us that
    nobody else can enter."""
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode):
        raise ControlSocketError(f"{d} is not a directory: refusing to use it (remove it)")
    if st.st_uid != os.getuid():
        raise ControlSocketError(
            f"{d} belongs to uid {st.st_uid}, not to us (uid {os.getuid()}): refusing to use "
            "it (remove it, or give --control PATH / --socket PATH)"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ControlSocketError(
            f"{d} is open to other users (mode {stat.S_IMODE(st.st_mode):o}): refusing to use "
            "it (chmod 700 it, or remove it)"
        )


def check_socket_owner(path: Path) -> None:
    """A control socket must be ours (or root's) before we believe what it says."""
    st = os.stat(path)
    if st.st_uid not in (os.getuid(), 0):
        raise ControlSocketError(
            f"{path} belongs to uid {st.st_uid}, not to us (uid {os.getuid()}): refusing to "
            "trust it"
        )


def _route_json(app: App, r) -> dict:
    return route_view(app.core, r).to_json()


def _all_vrps(app: App, req: dict) -> dict:
    """Every VRP held (the union of the sources), optionally of one ASN, one page at a time."""
    asn = req.get("asn")
    offset = max(0, int(req.get("offset", 0)))
    limit = max(0, int(req.get("limit", 1000)))
    page: list[dict] = []
    total = 0
    for v in app.store.iter_vrps():
        if asn is not None and v.asn != asn:
            continue
        if offset <= total < offset + limit:
            page.append({"vrp": str(v), "prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn})
        total += 1
    return {"vrps": page, "matched": total, "offset": offset, "asn": asn}


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
        if nb and app.core._peer(nb) is None:
            known = ", ".join(app.core.peers) or "none"
            return {"error": f"no neighbor {nb} (neighbors: {known})", "unknown_neighbor": nb}
        if nb:
            nb = app.core._peer(nb).address
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
    if cmd == "vrps" and not req.get("prefix"):
        return _all_vrps(app, req)
    if cmd in ("route", "vrps"):
        prefix = req.get("prefix", "")
        try:
            addr, plen = parse_prefix(prefix)
        except ValueError as e:
            return {"error": str(e)}
        asn = req.get("asn")
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
            if asn is None or v.asn == asn
        ]
        covered = [
            {"vrp": str(v), "prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn}
            for v in app.store.covered(addr, plen)
            if asn is None or v.asn == asn
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
        if os.path.lexists(self.path):
            # refuse to steal a live router's socket; clean up a stale one of ours
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(self.path))
                except OSError:
                    try:
                        check_socket_owner(self.path)
                        self.path.unlink()
                    except OSError as e:
                        raise ControlSocketError(
                            f"cannot remove the stale control socket {self.path}: {e}"
                        ) from None
                else:
                    other = self.path.with_name(f"control-{os.getpid()}.sock")
                    raise ControlSocketError(
                        f"another rov-router already answers on {self.path}; give this one "
                        f"its own socket, e.g. --control {other} (and 'rov-router show "
                        f"--socket {other}')"
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
    """Client side: send one request, return the answer.  Raises
    :class:`ControlSocketError` when the socket is not ours (or root's)."""
    check_socket_owner(path)
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
