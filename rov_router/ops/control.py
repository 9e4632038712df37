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

from ..status import RouteFilter, Status, VRPView


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


def _vrp_json(v: VRPView) -> dict:
    return {"vrp": v.text, **v.to_json()}


def answer(status: Status, req: dict) -> dict:
    """The answer to one request, read from the status view."""
    cmd = req.get("cmd")
    if cmd == "rtr":
        return {"rpki": [s.to_json() for s in status.rpki()]}
    if cmd == "neighbors":
        return {"neighbors": [n.to_json() for n in status.neighbors()]}
    if cmd == "routes":
        nb = req.get("neighbor") or ""
        if nb:
            address = status.neighbor_address(nb)
            if address is None:
                known = ", ".join(status.neighbor_addresses()) or "none"
                return {"error": f"no neighbor {nb} (neighbors: {known})", "unknown_neighbor": nb}
            nb = address
        flt = RouteFilter(state=req.get("state") or "", neighbor=nb)
        routes, total = status.routes(flt, limit=int(req.get("limit", 10_000)))
        return {
            "routes": [r.to_json() for r in routes],
            "matched": total,
            "truncated": total > len(routes),
        }
    if cmd == "vrps" and not req.get("prefix"):
        asn = req.get("asn")
        offset = max(0, int(req.get("offset", 0)))
        page, total = status.vrps(asn, offset, max(0, int(req.get("limit", 1000))))
        return {
            "vrps": [_vrp_json(v) for v in page],
            "matched": total,
            "offset": offset,
            "asn": asn,
        }
    if cmd in ("route", "vrps"):
        prefix = req.get("prefix", "")
        try:
            if cmd == "route":
                return {
                    "prefix": prefix,
                    "routes": [r.to_json() for r in status.route_views(prefix)],
                }
            covering, covered = status.covering(prefix), status.covered(prefix)
        except ValueError as e:
            return {"error": str(e)}
        asn = req.get("asn")
        return {
            "prefix": prefix,
            "covering": [
                {**_vrp_json(v), "sources": srcs}
                for v, srcs in covering
                if asn is None or v.asn == asn
            ],
            "covered": [_vrp_json(v) for v in covered if asn is None or v.asn == asn],
        }
    return {"error": f"unknown command {cmd!r} (rtr, neighbors, routes, route, vrps)"}


class ControlServer:
    """The control socket server: answers from ``status``."""

    def __init__(self, status: Status, path: Path) -> None:
        self.status = status
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
                    answer(self.status, req)
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
