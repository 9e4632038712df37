"""ExaBGP 5 process API: JSON lines -> route events, and route events -> text commands.

Slightly over 500 lines: both directions of the one text protocol, so that what we send and
what we parse back stay consistent in one file.

Facts this relies on (observed with ExaBGP 5.0.15):

* one message per line; plain-text ``done`` / ``error`` / ``exabgp 5.0.15`` answers to our
  commands are interleaved with the JSON;
* ``update`` messages carry ``announce[family][next-hop] = [{"nlri": p}, ...]`` (or plain
  strings in compact mode) and ``withdraw[family] = [...]``; End-of-RIB is ``message.eor``;
* ``state`` messages are ``connected`` / ``up`` / ``down`` (with ``reason``); ExaBGP never
  withdraws a dropped peer's routes;
* the process-wide shutdown is ``{"type": "notification", "notification": "shutdown"}``;
* commands are text: ``neighbor <ip> announce attributes ... nlri P1 P2`` and our AS path
  must be written out (ExaBGP sends ``as-path`` verbatim).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from .route import Attributes

try:
    import orjson

    _loads = orjson.loads
    _dumps = orjson.dumps
except ImportError:  # pragma: no cover
    import json

    _loads = json.loads
    _dumps = json.dumps


FAMILIES = ("ipv4 unicast", "ipv6 unicast")
SEGMENT_KINDS = {
    "as-sequence": "sequence",
    "as-set": "set",
    "confed-sequence": "confed-sequence",
    "confed-set": "confed-set",
}


# ---- events ------------------------------------------------------------------------------------


@dataclass(slots=True)
class PeerState:
    peer: str
    state: str  # connected | up | down
    reason: str = ""
    peer_as: int | None = None


@dataclass(slots=True)
class Update:
    """One UPDATE: prefixes announced with shared attributes and prefixes withdrawn."""

    peer: str
    peer_as: int | None
    announced: list[tuple[str, str, Attributes]] = field(default_factory=list)  # family, prefix
    withdrawn: list[tuple[str, str]] = field(default_factory=list)  # family, prefix


@dataclass(slots=True)
class EndOfRib:
    peer: str
    family: str


@dataclass(slots=True)
class Open:
    peer: str
    asn: int
    router_id: str
    capabilities: dict


@dataclass(slots=True)
class Notification:
    peer: str
    code: int
    subcode: int


@dataclass(slots=True)
class Shutdown:
    pass


@dataclass(slots=True)
class Answer:
    """``done`` / ``error`` (or another plain-text line) answering one of our commands."""

    text: str

    @property
    def ok(self) -> bool:
        return self.text == "done"


@dataclass(slots=True)
class Ignored:
    kind: str


class LineError(ValueError):
    """A line that could not be understood; ``line`` is kept for the log."""

    def __init__(self, message: str, line: str) -> None:
        super().__init__(message)
        self.line = line


Event = PeerState | Update | EndOfRib | Open | Notification | Shutdown | Answer | Ignored


def parse_line(line: str | bytes) -> Event:
    """Decode one line ExaBGP wrote to the process.  Raises :class:`LineError`.

    This is the one place where the shape of ExaBGP's JSON is checked: every value an event
    carries has the type the router core relies on (strings for addresses and prefixes, ints in
    range for AS numbers, MED, communities ...), so a malformed line is rejected here, whole,
    and never reaches the RIB or the commands built from it."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    s = text.strip()
    if not s:
        return Ignored("empty")
    if not s.startswith("{"):
        return Answer(s)
    try:
        m = _loads(s)
    except ValueError as e:
        raise LineError(f"not valid JSON: {e}", s) from None
    try:
        return _decode(_obj(m, "message"))
    except Malformed as e:
        raise LineError(f"unexpected message structure: {e}", s) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as e:
        raise LineError(f"unexpected message structure: {type(e).__name__}: {e}", s) from None


class Malformed(ValueError):
    """A value of the wrong type or out of range in an ExaBGP message."""


_U32 = (1 << 32) - 1


def _obj(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise Malformed(f"{what}: expected an object, got {type(v).__name__}")
    return v


def _list(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list):
        raise Malformed(f"{what}: expected a list, got {type(v).__name__}")
    return v


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise Malformed(f"{what}: expected a string, got {type(v).__name__}")
    return v


def _int(v: Any, what: str, high: int = _U32) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= high:
        raise Malformed(f"{what}: expected an integer 0..{high}, got {v!r:.40}")
    return v


def _opt_int(v: Any, what: str) -> int | None:
    return None if v is None else _int(v, what)


def _ints(v: Any, what: str, n: int, high: int) -> tuple[int, ...]:
    items = _list(v, what)
    if len(items) != n:
        raise Malformed(f"{what}: expected {n} numbers, got {len(items)}")
    return tuple(_int(x, what, high) for x in items)


def _decode(m: dict[str, Any]) -> Event:
    t = _str(m["type"], "type")
    if t == "notification" and m.get("notification") == "shutdown":
        return Shutdown()
    n = _obj(m["neighbor"], "neighbor")
    peer = _str(_obj(n["address"], "neighbor.address")["peer"], "neighbor.address.peer")
    peer_as = _opt_int(_obj(n.get("asn", {}), "neighbor.asn").get("peer"), "neighbor.asn.peer")
    if t == "state":
        reason = n.get("reason", "")
        return PeerState(
            peer,
            _str(n["state"], "neighbor.state"),
            reason if isinstance(reason, str) else "",
            peer_as,
        )
    if t == "update":
        if n.get("direction", "receive") != "receive":
            return Ignored("sent update")
        msg = _obj(n["message"], "message")
        if "update" not in msg and "eor" not in msg:
            return Ignored("raw update")  # receive { packets; } hex copy
        if "eor" in msg:
            eor = _obj(msg["eor"], "eor")
            return EndOfRib(peer, f"{_str(eor['afi'], 'eor.afi')} {_str(eor['safi'], 'eor.safi')}")
        return _decode_update(peer, peer_as, _obj(msg["update"], "update"))
    if t == "open":
        if n.get("direction") != "receive" or "open" not in n:
            return Ignored("sent or raw open")
        o = _obj(n["open"], "open")
        caps = o.get("capabilities", {})
        return Open(
            peer,
            _int(o["asn"], "open.asn"),
            _str(o.get("router_id", ""), "open.router_id"),
            caps if isinstance(caps, dict) else {},
        )
    if t == "notification" and "notification" in n:
        no = _obj(n["notification"], "notification")
        return Notification(
            peer, _int(no["code"], "notification.code", 255), _int(no["subcode"], "subcode", 255)
        )
    return Ignored(t)


def _nlri(x: Any, what: str) -> str:
    return _str(x if isinstance(x, str) else _obj(x, what)["nlri"], what)


def _decode_update(peer: str, peer_as: int | None, u: dict[str, Any]) -> Update:
    up = Update(peer, peer_as)
    attr = _obj(u.get("attribute", {}), "attribute")
    for fam, by_nh in _obj(u.get("announce", {}), "announce").items():
        if fam not in FAMILIES:
            continue
        for nh, nlris in _obj(by_nh, f"announce.{fam}").items():
            attrs = interned_attributes(nh, attr)
            for x in _list(nlris, f"announce.{fam}.{nh}"):
                up.announced.append((fam, _nlri(x, "announce nlri"), attrs))
    for fam, nlris in _obj(u.get("withdraw", {}), "withdraw").items():
        if fam not in FAMILIES:
            continue
        for x in _list(nlris, f"withdraw.{fam}"):
            up.withdrawn.append((fam, _nlri(x, "withdraw nlri")))
    return up


#: one Attributes object per distinct value: a full table has ~1/10 as many distinct attribute
#: sets as routes, so routes share one object
_INTERNED: dict[Attributes, Attributes] = {}
INTERN_MAX = 1 << 18  # the cache is dropped when it holds this many (sharing restarts)
#: the recent (next hop, attribute JSON) texts: repeats skip the decoding.  Kept small: the
#: texts of a whole table's attribute sets cost more than the objects decoded from them
_BY_TEXT: dict[tuple[str, bytes | str], Attributes] = {}
TEXT_MAX = 1 << 12


def interned_attributes(next_hop: str, a: dict[str, Any]) -> Attributes:
    """:func:`_attributes`, one object for every identical (next hop, attributes)."""
    key = (next_hop, _dumps(a))
    got = _BY_TEXT.get(key)
    if got is None:
        got = _attributes(next_hop, a)  # raises on bad input: nothing is cached then
        shared = _INTERNED.get(got)
        if shared is None:
            if len(_INTERNED) >= INTERN_MAX:
                _INTERNED.clear()
            _INTERNED[got] = got
        else:
            got = shared
        if len(_BY_TEXT) >= TEXT_MAX:
            _BY_TEXT.clear()
        _BY_TEXT[key] = got
    return got


_KNOWN = frozenset(
    {
        "origin",
        "as-path",
        "med",
        "local-preference",
        "community",
        "large-community",
        "extended-community",
        "atomic-aggregate",
        "aggregator",
    }
)


def _ext_community(c: Any) -> int:
    """One received extended community as its 8-octet value.  ExaBGP 5 writes
    ``{"value": N, "string": "target:64500:100"}``; a bare number or ``0x...`` text is taken too."""
    if isinstance(c, dict):
        c = c["value"]
    v = int(c, 0) if isinstance(c, str) else int(c)
    if not 0 <= v < 1 << 64:
        raise ValueError(f"extended community {c!r} is not 8 octets")
    return v


def _aggregator(v: Any) -> str | None:
    """AGGREGATOR as ``ASN:IPv4`` (ExaBGP writes the text; its ``json()`` form is a dict)."""
    if v is None:
        return None
    if isinstance(v, dict):
        return f"{int(v['asn'])}:{v['speaker']}"
    asn, _, speaker = str(v).partition(":")
    int(asn)
    ip_address(speaker)
    return f"{asn}:{speaker}"


def _generic(key: str, value: Any) -> tuple[int, int, str] | None:
    """``attribute-0xNN-0xFF: "0xHEX"``: an attribute ExaBGP does not know (it keeps only the
    optional transitive ones and sets their Partial bit)."""
    if not key.startswith("attribute-0x"):
        return None
    code_s, _, flag_s = key[len("attribute-") :].partition("-")
    code, flag = int(code_s, 16), int(flag_s, 16)
    data = str(value)
    if not (0 <= code <= 255 and 0 <= flag <= 255 and data.startswith("0x")):
        raise ValueError(f"bad generic attribute {key}: {value!r}")
    bytes.fromhex(data[2:])  # checks the payload is hex
    return code, flag, data.lower()


ORIGINS = ("igp", "egp", "incomplete")


def _attributes(next_hop: str, a: dict[str, Any]) -> Attributes:
    path = _obj(a.get("as-path", {}), "as-path")
    segs = []
    for k in sorted(path, key=lambda k: int(k) if k.isdigit() else -1):
        if not k.isdigit():
            raise Malformed(f"as-path: segment key {k!r:.40} is not a number")
        seg = _obj(path[k], f"as-path.{k}")
        kind = SEGMENT_KINDS.get(_str(seg["element"], f"as-path.{k}.element"))
        if kind is None:
            raise Malformed(f"as-path.{k}.element: unknown segment type {seg['element']!r:.40}")
        segs.append((kind, tuple(_int(x, "as-path ASN") for x in _list(seg["value"], "as-path"))))
    origin = _str(a.get("origin", "igp"), "origin")
    if origin not in ORIGINS:
        raise Malformed(f"origin: {origin!r:.40} is not one of {', '.join(ORIGINS)}")
    other = tuple(sorted((k, str(v)) for k, v in a.items() if k not in _KNOWN))
    generic = []
    otc = None
    for k, v in other:
        g = _generic(k, v)
        if g is not None:
            generic.append(g)
            if g[0] == 0x23 and len(g[2]) == 10:  # RFC 9234 OTC: one 4-octet ASN
                otc = int(g[2], 16)
        elif k in ("otc", "only-to-customer"):
            try:
                otc = int(str(v).split("-")[0], 0)
            except ValueError:
                otc = None
    return Attributes(
        next_hop=next_hop,
        origin=origin,
        as_path=tuple(segs),
        med=_opt_int(a.get("med"), "med"),
        local_pref=_opt_int(a.get("local-preference"), "local-preference"),
        communities=tuple(
            _ints(c, "community", 2, 0xFFFF) for c in _list(a.get("community", []), "community")
        ),
        large_communities=tuple(
            _ints(c, "large-community", 3, _U32)
            for c in _list(a.get("large-community", []), "large-community")
        ),
        extended_communities=tuple(
            _ext_community(c) for c in _list(a.get("extended-community", []), "extended-community")
        ),
        atomic_aggregate=bool(a.get("atomic-aggregate", False)),
        aggregator=_aggregator(a.get("aggregator")),
        otc=otc,
        other=other,
        generic=tuple(generic),
    )


# ---- commands ----------------------------------------------------------------------------------

#: extended community type 0x43: RFC 8097 origin validation state (policy.rfc8097_community)
RFC8097_TYPE = 0x43
#: extended community type octet bit 0x40: non-transitive across ASes (RFC 4360 §2)
EXT_NON_TRANSITIVE = 0x40


def as_path_text(segments: tuple[tuple[str, tuple[int, ...]], ...], local_as: int | None) -> str:
    """ExaBGP's ``as-path`` syntax for a path, every segment as received and in order
    (``[ sequence ] ( set ) [ sequence ]``, its static parser reads any mix), with ``local_as``
    prepended (eBGP).  Confederation segments are removed (RFC 5065 §5.3: never sent outside
    the confederation).  An empty result (iBGP, empty path) is ``""``."""
    parts: list[str] = []
    first = True
    for kind, asns in segments:
        if kind == "sequence":
            lead = [local_as] if first and local_as is not None else []
            parts.append("[ " + " ".join(str(x) for x in (*lead, *asns)) + " ]")
        elif kind == "set":
            if first and local_as is not None:
                parts.append(f"[ {local_as} ]")
            parts.append("( " + " ".join(str(x) for x in asns) + " )")
        else:
            continue
        first = False
    if first and local_as is not None:
        parts.append(f"[ {local_as} ]")
    return ("as-path " + " ".join(parts)) if parts else ""


def attributes_text(
    attrs: Attributes,
    *,
    next_hop: str,
    local_as: int | None,
    local_pref: int | None = None,
    med: str | int = "keep",
    ebgp: bool = True,
    strip_rfc8097: bool = True,
    extra_communities: tuple[tuple[int, int], ...] = (),
    extra_ext_communities: tuple[str, ...] = (),
    extra_large_communities: tuple[tuple[int, int, int], ...] = (),
) -> str:
    """The ``announce attributes`` part of a command for re-advertising a route as a
    transparent router does: ORIGIN, AS_PATH (``local_as`` prepended for eBGP), MED per
    ``med`` (``keep`` / ``remove`` / a value), COMMUNITIES, LARGE_COMMUNITIES, EXTENDED
    COMMUNITIES (only the transitive ones when ``ebgp``; RFC 8097 0x43 removed when
    ``strip_rfc8097``), AGGREGATOR, ATOMIC_AGGREGATE and unknown optional transitive attributes
    (with the Partial bit ExaBGP set on receipt).  LOCAL_PREF only when given (iBGP)."""
    parts = [f"next-hop {next_hop}", f"origin {attrs.origin}"]
    path = as_path_text(attrs.as_path, local_as)
    if path:
        parts.append(path)
    m = attrs.med if med == "keep" else (None if med == "remove" else med)
    if m is not None:
        parts.append(f"med {m}")
    if local_pref is not None:
        parts.append(f"local-preference {local_pref}")
    comms = attrs.communities + tuple(c for c in extra_communities if c not in attrs.communities)
    if comms:
        parts.append("community [ " + " ".join(f"{a}:{b}" for a, b in comms) + " ]")
    large = attrs.large_communities + tuple(
        c for c in extra_large_communities if c not in attrs.large_communities
    )
    if large:
        parts.append("large-community [ " + " ".join(f"{a}:{b}:{c}" for a, b, c in large) + " ]")
    ext = [
        f"0x{v:016x}"
        for v in attrs.extended_communities
        if not (ebgp and (v >> 56) & EXT_NON_TRANSITIVE)
        and not (strip_rfc8097 and v >> 56 == RFC8097_TYPE)
    ]
    ext += [x for x in extra_ext_communities if x not in ext]
    if ext:
        parts.append("extended-community [ " + " ".join(ext) + " ]")
    if attrs.atomic_aggregate:
        parts.append("atomic-aggregate")
    if attrs.aggregator:
        parts.append(f"aggregator ( {attrs.aggregator} )")
    for code, flag, data in attrs.generic:
        parts.append(f"attribute [ 0x{code:02x} 0x{flag:02x} {data} ]")
    return " ".join(parts)


def announce_command(neighbor: str | None, attributes: str, prefixes: list[str]) -> str:
    """``[neighbor N] announce attributes ... nlri P1 P2 ...``; without ``neighbor`` the command
    goes to every neighbor of the ExaBGP it is sent to (a speaker with one session)."""
    head = f"neighbor {neighbor} " if neighbor is not None else ""
    return f"{head}announce attributes {attributes} nlri {' '.join(prefixes)}"


def origin_attributes(next_hop: str, path: Sequence[int], as_set: Sequence[int] = ()) -> str:
    """The attributes of a route a speaker originates (a replayed MRT update, a lab step):
    ``next-hop NH as-path [ A B C ]``, then the AS_SET as ``( X Y )`` when there is one."""
    text = f"next-hop {next_hop} as-path [ {' '.join(map(str, path))} ]"
    return text + (f" ( {' '.join(map(str, as_set))} )" if as_set else "")


def mapped_next_hop(address: str, prefix: str) -> str:
    """The next hop a speaker on an IPv4 session gives its own routes: ``address``, or the
    IPv4-mapped IPv6 address for an IPv6 prefix."""
    return f"::ffff:{address}" if ":" in prefix else address


def withdraw_route_command(prefix: str, next_hop: str | None = None) -> str:
    """``withdraw route P [next-hop NH]`` to every neighbor of a speaker."""
    return f"withdraw route {prefix}" + (f" next-hop {next_hop}" if next_hop else "")


def withdraw_next_hop(prefix: str, announced: str | None) -> str:
    """The next hop to write in a withdrawal of ``prefix``: the one it was announced with
    (the head of its attribute text), else ``self`` (IPv4) / ``::1`` (IPv6).  ExaBGP's
    ``withdraw attributes`` form wants one; the UPDATE it builds carries only the NLRI."""
    if announced and announced.startswith("next-hop "):
        return announced.split(" ", 2)[1]
    return "::1" if ":" in prefix else "self"


def withdraw_command(neighbor: str, prefixes: list[str] | str, next_hop: str = "self") -> str:
    """One ``withdraw attributes ... nlri P1 P2 ...`` command for a batch of prefixes of one
    family (profiled: one command per prefix made a lost full table take 3x as long to clear
    as to announce)."""
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    return f"neighbor {neighbor} withdraw attributes next-hop {next_hop} nlri {' '.join(prefixes)}"
