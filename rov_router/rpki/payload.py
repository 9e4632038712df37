"""The RPKI payload and how it moves: the record types (VRP, Router Key, ASPA), a compact batch
of VRP announcements and withdrawals, a complete RTR transfer (:class:`Update`), what applying
one changed (:class:`Changes`), and the two sides of the RTR code as protocols (after rpki-rs's
``PayloadTarget`` / ``PayloadSource``):

* the router's RTR client session hands each complete :class:`Update` to a
  :class:`PayloadTarget` (the VRP store), which applies it atomically or refuses it with an
  :class:`UpdateError` carrying the RTR error code;
* the embedded cache's per-router session answers from a :class:`PayloadSource` (the cache's
  data and serial history), which hands out encoded responses.

This module imports no I/O and no pytricia, so the sans-IO sessions load without the store.

The VRP batch layout lives here only: a record is a Prefix PDU body after its 8-octet header
(RFC 8210 §5.6 / §5.7: flags, prefix length, max length, zero, address, ASN), 12 octets for
IPv4 and 24 for IPv6.  The PDU codec copies those bodies into a batch as they are, and the store
reads them with :data:`BATCH_INT_V4` / :data:`BATCH_INT_V6`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NamedTuple, Protocol

#: one batch record (a Prefix PDU body): flags, plen, maxlen, zero, address, ASN
BATCH_REC_V4 = struct.Struct("!BBBx4sI")
BATCH_REC_V6 = struct.Struct("!BBBx16sI")
#: the same records with the address as integers (IPv6 as two 64-bit halves), for sort keys
BATCH_INT_V4 = struct.Struct("!BBBxII")
BATCH_INT_V6 = struct.Struct("!BBBxQQI")
#: a first load larger than this reports ``Changes.full`` instead of listing its prefixes
FULL_THRESHOLD = 10_000


class VRP(NamedTuple):
    """Validated ROA Payload: packed network address, prefix length, max length, origin ASN."""

    addr: bytes
    plen: int
    maxlen: int
    asn: int

    @property
    def is_v6(self) -> bool:
        return len(self.addr) == 16

    @property
    def prefix(self) -> str:
        a = IPv6Address(self.addr) if len(self.addr) == 16 else IPv4Address(self.addr)
        return f"{a}/{self.plen}"

    @property
    def key(self) -> tuple[bytes, int]:
        """The trie key (pytricia takes ``(packed address, length)`` tuples)."""
        return (self.addr, self.plen)

    def __str__(self) -> str:
        return f"{self.prefix}-{self.maxlen} AS{self.asn}"

    @classmethod
    def parse(cls, prefix: str, maxlen: int | None, asn: int) -> VRP:
        addr, plen = parse_prefix(prefix)
        ml = plen if maxlen is None else int(maxlen)
        bits = len(addr) * 8
        if not plen <= ml <= bits:
            raise ValueError(f"max length {ml} outside {plen}..{bits} for {prefix}")
        if not 0 <= asn <= 0xFFFFFFFF:
            raise ValueError(f"ASN {asn} outside 0..4294967295")
        return cls(addr, plen, ml, asn)


class ASPARecord(NamedTuple):
    """One customer AS and its (sorted, unique) provider ASes; ``(0,)`` is the AS0 ASPA."""

    customer: int
    providers: tuple[int, ...]

    def __str__(self) -> str:
        return f"AS{self.customer} -> [{', '.join(f'AS{p}' for p in self.providers)}]"


class RouterKey(NamedTuple):
    """BGPsec router key: Subject Key Identifier (20 octets), ASN, SubjectPublicKeyInfo (DER)."""

    ski: bytes
    asn: int
    spki: bytes

    def __str__(self) -> str:
        return f"AS{self.asn} SKI {self.ski.hex()}"


def parse_prefix(text: str, *, mask_host_bits: bool = False) -> tuple[bytes, int]:
    """``"192.0.2.0/24"`` -> ``(b"\\xc0\\x00\\x02\\x00", 24)``; raises ValueError when malformed."""
    if not isinstance(text, str):
        raise ValueError(f'prefix must be a string like "192.0.2.0/24", got {kind_of(text)}')
    addr_s, sep, len_s = text.strip().partition("/")
    if ":" in addr_s:
        fam, bits = socket.AF_INET6, 128
    else:
        fam, bits = socket.AF_INET, 32
    try:
        addr = socket.inet_pton(fam, addr_s)
    except OSError:
        raise ValueError(f"bad address in prefix {text!r}") from None
    if not sep:
        plen = bits
    elif not len_s.isdigit() or int(len_s) > bits:
        raise ValueError(f"bad prefix length in {text!r}")
    else:
        plen = int(len_s)
    host = int.from_bytes(addr, "big") & ((1 << (bits - plen)) - 1)
    if host:
        net = (int.from_bytes(addr, "big") ^ host).to_bytes(bits // 8, "big")
        if not mask_host_bits:
            raise ValueError(
                f"prefix {text!r} has bits set beyond /{plen} "
                f"(the network is {format_prefix(net, plen)})"
            )
        addr = net
    return addr, plen


def format_prefix(addr: bytes, plen: int) -> str:
    a = IPv6Address(addr) if len(addr) == 16 else IPv4Address(addr)
    return f"{a}/{plen}"


def kind_of(v: Any) -> str:
    """How a JSON value looks, for error messages (never Python's type names)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the string {v[:60]!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return "an unexpected value"


_B4 = BATCH_REC_V4
_B6 = BATCH_REC_V6


class VRPBatch:
    """A compact list of ``(announce, VRP)`` pairs: the bodies of Prefix PDUs as received
    (flags, prefix length, max length, zero, address, ASN), 12 octets per IPv4 record and 24 per
    IPv6 record.  A full table of 700k VRPs takes about 10 MB here instead of ~150 MB of tuples.
    Order is kept within each address family (which is all that matters: a record and its
    withdrawal are always of the same family)."""

    __slots__ = ("v4", "v6")

    def __init__(self, items: Iterable[tuple[bool, VRP]] = ()) -> None:
        self.v4 = bytearray()
        self.v6 = bytearray()
        for item in items:
            self.append(item)

    def append(self, item: tuple[bool, VRP]) -> None:
        announce, v = item
        if len(v.addr) == 4:
            self.v4 += _B4.pack(int(announce), v.plen, v.maxlen, v.addr, v.asn)
        else:
            self.v6 += _B6.pack(int(announce), v.plen, v.maxlen, v.addr, v.asn)

    def __len__(self) -> int:
        return len(self.v4) // 12 + len(self.v6) // 24

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def raw(self) -> Iterator[tuple[int, int, int, bytes, int]]:
        """``(flags, plen, maxlen, addr, asn)`` for every record, IPv4 first."""
        yield from _B4.iter_unpack(self.v4)
        yield from _B6.iter_unpack(self.v6)

    def __iter__(self) -> Iterator[tuple[bool, VRP]]:
        new = tuple.__new__
        for flags, plen, maxlen, addr, asn in self.raw():
            yield bool(flags & 1), new(VRP, (addr, plen, maxlen, asn))


class UpdateError(Exception):
    """An update cannot be applied: ``code`` is the RTR error code (6 or 7), ``record`` the culprit."""

    def __init__(self, code: int, message: str, record: object) -> None:
        super().__init__(message)
        self.code = code
        self.record = record


@dataclass
class Update:
    """A complete RTR transfer (Cache Response .. End of Data) from one source, in PDU order.

    ``reset`` means the transfer answers a Reset Query: it replaces everything the source held.
    ``vrps`` / ``router_keys`` are ``(announce, record)`` pairs; ``aspas`` too, where a withdraw
    record has no providers.
    """

    source: str
    reset: bool
    vrps: VRPBatch = field(default_factory=VRPBatch)
    router_keys: list[tuple[bool, RouterKey]] = field(default_factory=list)
    aspas: list[tuple[bool, ASPARecord]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.vrps) + len(self.router_keys) + len(self.aspas)


@dataclass
class Changes:
    """What an applied update changed.  ``prefixes`` are the VRP prefixes whose VRPs changed.

    ``full`` is set when a first full table of more than :data:`FULL_THRESHOLD` prefixes was
    loaded: every route may be affected, so consumers revalidate everything, and the prefixes
    of that load are not listed (saving ~100 bytes per VRP prefix at the load's peak)."""

    source: str
    prefixes: set[tuple[bytes, int]] = field(default_factory=set)
    full: bool = False
    vrps_added: int = 0
    vrps_removed: int = 0
    aspa_customers: set[int] = field(default_factory=set)
    router_keys_added: int = 0
    router_keys_removed: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.prefixes
            or self.aspa_customers
            or self.router_keys_added
            or self.router_keys_removed
        )

    def prefix_strings(self) -> list[str]:
        return sorted(format_prefix(a, p) for a, p in self.prefixes)


class PayloadTarget(Protocol):
    """Where the RTR client session's updates go (the VRP store)."""

    def apply(self, update: Update) -> Changes:
        """Apply a complete transfer atomically; raise :class:`UpdateError` (nothing applied)
        for a withdrawal of an unknown record (6) or a duplicate announcement (7)."""
        ...

    def flush(self, source: str) -> Changes:
        """Drop everything ``source`` held (its data expired or was reset)."""
        ...


class PayloadSource(Protocol):
    """What the cache's session with one router answers from (the cache's data and history)."""

    session_id: int
    serial: int
    has_data: bool

    def full_payload(self, version: int) -> bytes:
        """The encoded PDUs of the whole set (between Cache Response and End of Data)."""
        ...

    def delta_payload(self, version: int, from_serial: int) -> bytes | None:
        """The net change since ``from_serial`` encoded, or None: not in the history."""
        ...

    def oldest_serial(self) -> int: ...

    def end_of_data(self, version: int) -> bytes: ...
