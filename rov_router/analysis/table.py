"""Routing tables for the analysis, read from files or from a running router.

A :class:`Table` is a list of routes kept as parallel lists (one million routes as objects
would cost seconds to build).  A route is a prefix with one origin (``None``: the AS_PATH
ends in an AS_SET, RFC 6811 NONE); a MOAS line of CAIDA pfx2as (``A_B``) gives one route
per origin.  Routes read from MRT or from a router also carry their AS_PATH and the peer
they came from.

Formats:

* CAIDA pfx2as: ``prefix<TAB>length<TAB>origin`` (``A_B`` MOAS, ``A,B`` AS_SET);
* ``PREFIX ASN`` lines (``ASN`` as ``64496`` or ``AS64496``; ``NONE`` / ``{1,2}`` for an
  AS_SET origin), ``#`` comments;
* MRT (RFC 6396): TABLE_DUMP / TABLE_DUMP_V2 RIBs (every RIB entry is a route) and BGP4MP
  update files (the table left after applying the announcements and withdrawals in order,
  per peer);
* a running router: its Adj-RIB-In over the control socket, with each route's current state,
  whether it was accepted, and the neighbor's role and policy.

``.gz``, ``.bz2`` and ``.xz`` files are decompressed.  A bad line is refused with
:class:`TableError` naming the file and line.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..rpki.vrp import format_prefix, parse_asn, parse_prefix

MRT_TYPES = {12, 13, 16, 17}  # TABLE_DUMP, TABLE_DUMP_V2, BGP4MP, BGP4MP_ET


class TableError(ValueError):
    """A table could not be read; the message names the file and the line or record."""


@dataclass
class Table:
    """Routes as parallel lists; index ``i`` is route ``i`` everywhere."""

    source: str = ""
    kind: str = ""
    addrs: list[bytes] = field(default_factory=list)
    plens: list[int] = field(default_factory=list)
    origins: list[int | None] = field(default_factory=list)
    #: AS_PATH as received (neighbor first, origin last) and a trailing AS_SET, when known
    paths: list[tuple[int, ...]] | None = None
    as_sets: list[tuple[int, ...]] | None = None
    #: where each route came from (a router's neighbor address, an MRT peer), when known
    peers: list[str] | None = None
    #: a running router's view: its state, accepted flag and action for each route
    router_states: list[str] | None = None
    router_accepted: list[bool] | None = None
    router_actions: list[str] | None = None
    #: the router's ASPA state of each route (None: no ASPA algorithm for the neighbor's role)
    router_aspa: list[str | None] | None = None
    #: neighbor address -> {"role": ..., "policy": ..., "aspa_policy": ..., "asn": ...}
    neighbors: dict[str, dict] = field(default_factory=dict)
    lines: int = 0

    def __len__(self) -> int:
        return len(self.addrs)

    def add(
        self,
        addr: bytes,
        plen: int,
        origin: int | None,
        path: tuple[int, ...] | None = None,
        as_set: tuple[int, ...] = (),
        peer: str | None = None,
    ) -> None:
        self.addrs.append(addr)
        self.plens.append(plen)
        self.origins.append(origin)
        if self.paths is not None:
            self.paths.append(path or ())
            self.as_sets.append(as_set)  # type: ignore[union-attr]
        if self.peers is not None:
            self.peers.append(peer or "")

    def prefix(self, i: int) -> str:
        a = self.addrs[i]
        if len(a) == 4:
            return f"{socket.inet_ntop(socket.AF_INET, a)}/{self.plens[i]}"
        return format_prefix(a, self.plens[i])

    def has_paths(self) -> bool:
        return self.paths is not None

    @classmethod
    def from_routes(cls, routes: Iterable[tuple[str, int | None]], source: str = "") -> Table:
        """A table from ``(prefix, origin)`` pairs (tests, the API)."""
        t = cls(source=source, kind="routes")
        for prefix, origin in routes:
            addr, plen = parse_prefix(prefix)
            t.add(addr, plen, origin)
        return t


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")  # type: ignore[return-value]
    if path.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8", errors="replace")  # type: ignore[return-value]
    if path.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8", errors="replace")  # type: ignore[return-value]
    return open(path, encoding="utf-8", errors="replace")


def _head(path: str, n: int = 16) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read(n)
        if path.endswith(".bz2"):
            with bz2.open(path, "rb") as f:
                return f.read(n)
        if path.endswith(".xz"):
            with lzma.open(path, "rb") as f:
                return f.read(n)
        with open(path, "rb") as f:
            return f.read(n)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise TableError(f"{path}: cannot read: {e}") from None


def detect_format(path: str) -> str:
    """``mrt`` or ``text`` (pfx2as and ``PREFIX ASN`` lines are told apart per line)."""
    head = _head(path)
    if len(head) >= 12 and int.from_bytes(head[4:6], "big") in MRT_TYPES and b"\n" not in head:
        return "mrt"
    return "text"


def read_table(path: str | Path, fmt: str = "auto") -> Table:
    """Read a table file; ``fmt`` is ``auto``, ``text`` (pfx2as / ``PREFIX ASN``) or ``mrt``."""
    p = str(path)
    if fmt == "auto":
        fmt = detect_format(p)
    if fmt == "mrt":
        return read_mrt(p)
    if fmt in ("text", "pfx2as", "lines"):
        return read_text(p)
    raise TableError(f"{p}: unknown table format {fmt!r} (auto, text, mrt)")


def _origin_text(text: str) -> int | None:
    s = text.strip()
    if s.upper() in ("NONE", "AS_SET", "{}") or s.startswith("{") or "," in s:
        return None
    return parse_asn(s)


def read_text(path: str) -> Table:
    """CAIDA pfx2as or ``PREFIX ASN`` lines."""
    t = Table(source=path, kind="text")
    addrs, plens, origins = t.addrs, t.plens, t.origins
    pton = socket.inet_pton
    v4, v6 = socket.AF_INET, socket.AF_INET6
    lineno = 0
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):  # noqa: B007 - lineno names the bad line
                parts = line.split("\t")
                if len(parts) == 3:  # the fast path: CAIDA pfx2as
                    a, n, o = parts
                    plen = int(n)
                    addr = pton(v6 if ":" in a else v4, a)
                    bits = len(addr) * 8
                    if not 0 <= plen <= bits or (
                        plen < bits and int.from_bytes(addr, "big") & ((1 << (bits - plen)) - 1)
                    ):
                        raise ValueError(f"bad prefix {a}/{n}")
                    o = o.strip()
                    if "_" in o:
                        for x in o.split("_"):
                            addrs.append(addr)
                            plens.append(plen)
                            origins.append(None if "," in x else parse_asn(x))
                        continue
                    addrs.append(addr)
                    plens.append(plen)
                    origins.append(None if "," in o else int(o))
                    continue
                s = line.strip()
                if not s or s[0] in "#;%":
                    continue
                f = s.replace("\t", " ").split()
                if len(f) == 3 and f[1].isdigit() and "/" not in f[0]:
                    f = [f"{f[0]}/{f[1]}", f[2]]
                if len(f) < 2:
                    raise ValueError(f"expected 'PREFIX ASN', got {s!r}")
                addr, plen = parse_prefix(f[0])
                for x in f[1].split("_"):
                    addrs.append(addr)
                    plens.append(plen)
                    origins.append(_origin_text(x))
    except (ValueError, OSError, UnicodeDecodeError) as e:
        where = f"line {lineno}" if lineno else "reading"
        raise TableError(f"{path}: {where}: {e}") from None
    except (EOFError, lzma.LZMAError) as e:
        raise TableError(f"{path}: truncated or corrupt after line {lineno}: {e}") from None
    t.lines = lineno
    return t


def read_mrt(path: str) -> Table:
    """An MRT RIB (every entry a route) or update file (the table after all updates)."""
    from ..bgp.mrt import read_updates

    t = Table(source=path, kind="mrt", paths=[], as_sets=[], peers=[])
    # (peer, prefix) -> (origin, path, as_set); insertion order is kept for output stability
    rib: dict[tuple[str, str], tuple[int | None, tuple[int, ...], tuple[int, ...]]] = {}
    n = 0
    try:
        for n, up in enumerate(read_updates(path), 1):  # noqa: B007
            peer = f"AS{up.peer_as} {up.peer_ip}".strip() if up.peer_ip else f"peer#{up.peer_as}"
            for prefix in up.withdrawn:
                rib.pop((peer, prefix), None)
            for prefix, seq, sets in up.announced:
                origin = None if sets else (seq[-1] if seq else None)
                rib[(peer, prefix)] = (origin, tuple(seq), tuple(sets))
    except ImportError:
        raise TableError("reading MRT needs mrtparse (pip install mrtparse)") from None
    except Exception as e:  # mrtparse raises assorted errors on damaged input
        raise TableError(f"{path}: MRT record {n + 1}: cannot read: {e}") from None
    for (peer, prefix), (origin, seq, sets) in rib.items():
        try:
            addr, plen = parse_prefix(prefix, mask_host_bits=True)
        except ValueError as e:
            raise TableError(f"{path}: {e}") from None
        t.add(addr, plen, origin, seq, sets, peer)
    t.lines = n
    return t


def _parse_path(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A router's ``path`` text (``1 2 {3,4}``, confed segments in parentheses) -> (seq, set)."""
    seq: list[int] = []
    sets: list[int] = []
    depth = 0
    for tok in text.replace("{", " { ").replace("}", " } ").replace(",", " ").split():
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        elif tok.startswith("(") or tok.endswith(")"):
            continue  # confederation segments are not part of the AS_PATH seen by ASPA
        elif tok.isdigit():
            (sets if depth else seq).append(int(tok))
    return tuple(seq), tuple(sets)


def read_router(socket_path: Path, timeout: float = 120.0) -> Table:
    """Every route a running router holds (its Adj-RIB-In), read over the control socket."""
    from ..ops.control import request

    try:
        nbs = request(socket_path, {"cmd": "neighbors"}, timeout)
        resp = request(socket_path, {"cmd": "routes", "limit": 1 << 40}, timeout)
    except (OSError, ValueError) as e:
        raise TableError(
            f"no router answers on {socket_path}: {e} (is 'rov-router run' running? --socket PATH)"
        ) from None
    for r in (nbs, resp):
        if "error" in r:
            raise TableError(f"router at {socket_path}: {r['error']}")
    t = Table(
        source=f"router at {socket_path}",
        kind="router",
        paths=[],
        as_sets=[],
        peers=[],
        router_states=[],
        router_accepted=[],
        router_actions=[],
        router_aspa=[],
    )
    t.neighbors = {
        n["address"]: {
            "asn": n.get("asn"),
            "role": n.get("role"),
            "policy": n.get("policy"),
            "aspa_policy": n.get("aspa_policy"),
        }
        for n in nbs.get("neighbors", [])
    }
    for i, r in enumerate(resp.get("routes", [])):
        try:
            addr, plen = parse_prefix(r["prefix"])
            seq, sets = _parse_path(r.get("path") or "")
            origin = r.get("origin")
        except (KeyError, ValueError, TypeError) as e:
            raise TableError(f"router at {socket_path}: route {i}: {e}") from None
        t.add(addr, plen, origin, seq, sets, r.get("neighbor", ""))
        t.router_states.append(r.get("state", ""))  # type: ignore[union-attr]
        t.router_accepted.append(bool(r.get("accepted")))  # type: ignore[union-attr]
        t.router_actions.append(r.get("action", ""))  # type: ignore[union-attr]
        t.router_aspa.append(r.get("aspa") or None)  # type: ignore[union-attr]
    t.lines = len(t)
    return t
