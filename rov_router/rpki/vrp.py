"""RPKI payload types (VRP, ASPA record, Router Key) and loaders for VRP files.

Formats read: rpki-client JSON (``roas``, ``bgpsec_keys``, ``aspas`` or the older per-AFI
``provider_authorizations``), StayRTR / Routinator JSON (the same shape; ASNs as numbers or
``"AS123"``), rpki-client / Routinator CSV (``ASN,IP Prefix,Max Length,Trust Anchor``) and a
simple CSV (``prefix,maxLength,asn``).  ``.gz``, ``.bz2`` and ``.xz`` files are decompressed.

A file with a bad entry is refused as a whole with :class:`VRPFileError` naming the file, the
entry and the reason, so callers keep whatever data they already hold.
"""

from __future__ import annotations

import base64
import bz2
import csv
import gzip
import io
import lzma
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, NamedTuple

try:  # orjson parses the 58 MB rpki-client export about 3x faster than the json module
    import orjson as _json

    def _loads(data: bytes) -> Any:
        return _json.loads(data)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    import json as _stdjson

    def _loads(data: bytes) -> Any:
        return _stdjson.loads(data)


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


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------


def parse_prefix(text: str, *, mask_host_bits: bool = False) -> tuple[bytes, int]:
    """``"192.0.2.0/24"`` -> ``(b"\\xc0\\x00\\x02\\x00", 24)``; raises ValueError when malformed."""
    if not isinstance(text, str):
        raise ValueError(f'prefix must be a string like "192.0.2.0/24", got {_kind(text)}')
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


def _kind(v: Any) -> str:
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


def _object(v: Any, what: str) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object ({what}), got {_kind(v)}")
    return v


def parse_asn(value: Any) -> int:
    """ASN as a number or a string (``"AS64497"``, ``"as64513"``, ``"64496"``)."""
    if isinstance(value, bool):
        raise ValueError(f"bad ASN {value!r}")
    if isinstance(value, int):
        asn = value
    elif isinstance(value, str):
        s = value.strip()
        if s[:2].lower() == "as":
            s = s[2:]
        if not s.isdigit():
            raise ValueError(f'bad ASN {value!r} (expected a number or "AS64496")')
        asn = int(s)
    else:
        raise ValueError(f'bad ASN: expected a number or "AS64496", got {_kind(value)}')
    if not 0 <= asn <= 0xFFFFFFFF:
        raise ValueError(f"ASN {value!r} outside 0..4294967295")
    return asn


def format_prefix(addr: bytes, plen: int) -> str:
    a = IPv6Address(addr) if len(addr) == 16 else IPv4Address(addr)
    return f"{a}/{plen}"


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


class VRPFileError(ValueError):
    """A VRP file could not be read; names the file, the entry and the reason."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}" if where else f"{path}: {reason}")
        self.path = path
        self.where = where
        self.reason = reason


@dataclass
class VRPSet:
    """The content of one VRP file, deduplicated."""

    vrps: set[VRP] = field(default_factory=set)
    aspas: dict[int, tuple[int, ...]] = field(default_factory=dict)
    router_keys: set[RouterKey] = field(default_factory=set)
    entries: int = 0
    duplicates: int = 0
    expired: int = 0  # VRP (ROA) entries whose 'expires' lies in the past
    expired_aspas: int = 0  # ASPA entries likewise
    masked: int = 0
    format: str = ""
    #: the trust anchor of each VRP, when the file names it and the loader was asked to keep
    #: it (``keep_ta``); a VRP listed under several TAs keeps the first
    tas: dict[VRP, str] | None = None

    def summary(self) -> str:
        v4 = sum(1 for v in self.vrps if len(v.addr) == 4)
        s = (
            f"{len(self.vrps)} VRPs ({v4} IPv4, {len(self.vrps) - v4} IPv6) from {self.entries} "
            f"entries, {len(self.aspas)} ASPA, {len(self.router_keys)} router keys"
        )
        if self.duplicates:
            s += f"; {self.duplicates} duplicate entries merged"
        if self.expired or self.expired_aspas:
            s += f"; expired entries dropped: {self.expired} VRPs, {self.expired_aspas} ASPA"
        if self.masked:
            s += f"; host bits masked in {self.masked} prefixes"
        return s


#: ``progress(stage, done, total)`` of a file being loaded: stage "reading" (bytes of the file
#: on disk), "parsing" (no figures) and "entries" (entries checked of the file's entries)
LoadProgress = Callable[[str, int, int | None], None]
_EVERY = 0x3FFF  # entries between two progress calls


def read_bytes(path: str | Path, progress: LoadProgress | None = None) -> bytes:
    p = str(path)
    try:
        if progress is not None:
            return _read_chunks(p, progress)
        if p.endswith(".xz"):
            return lzma.open(p).read()
        if p.endswith(".gz"):
            return gzip.open(p).read()
        if p.endswith(".bz2"):
            return bz2.open(p).read()
        return Path(p).read_bytes()
    except (OSError, lzma.LZMAError, EOFError) as e:
        raise VRPFileError(p, "", f"cannot read: {e}") from None


def _read_chunks(p: str, progress: LoadProgress) -> bytes:
    """The file's (decompressed) content, reporting the bytes read from disk."""
    with open(p, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        opener = {".xz": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}.get(Path(p).suffix)
        f = opener(raw) if opener is not None else raw
        chunks = []
        progress("reading", 0, size)
        while chunk := f.read(1 << 20):
            chunks.append(chunk)
            progress("reading", raw.tell(), size)
        return b"".join(chunks)


def load_vrp_file(
    path: str | Path,
    *,
    fmt: str = "auto",
    now: float | None = None,
    ignore_expires: bool = False,
    progress: LoadProgress | None = None,
    keep_ta: bool = False,
) -> VRPSet:
    """Load a VRP file; ``fmt`` is ``auto``, ``json`` or ``csv``.

    Entries whose rpki-client ``expires`` lies before ``now`` are dropped (counted in
    ``expired``), as StayRTR does, unless ``ignore_expires`` (for old snapshots).
    ``progress`` (see :data:`LoadProgress`) is told how far the reading has come.
    ``keep_ta``: remember each VRP's trust anchor (JSON ``ta``, the CSV's fourth column) in
    ``tas``, for exports.
    """
    p = str(path)
    data = read_bytes(p, progress)
    if progress is not None:
        progress("parsing", 0, None)
    if not data.strip():
        # a producer that truncates before it writes leaves this behind: never an empty set
        what = f"{len(data)} bytes" if not data else f"{len(data)} bytes, all whitespace"
        raise VRPFileError(p, "", f"empty ({what})")
    if fmt == "auto":
        head = data.lstrip()[:1]
        fmt = "json" if head in (b"{", b"[") else "csv"
    if now is None:
        now = time.time()
    if fmt == "json":
        out = _load_json(p, data, now, ignore_expires, progress, keep_ta)
    elif fmt == "csv":
        out = _load_csv(p, data, progress, keep_ta)
    else:
        raise VRPFileError(p, "", f"unknown format {fmt!r} (use json or csv)")
    if not out.vrps and not out.aspas and not out.router_keys:
        if out.expired:
            raise VRPFileError(
                p,
                "",
                f"no VRPs: all {out.expired} VRPs have expired"
                + (f" (and {out.expired_aspas} ASPA entries)" if out.expired_aspas else "")
                + " ('expires' in the past: an old snapshot? --ignore-expires / "
                "ignore_expires = true serves it)",
            )
        if out.format == "csv":
            # CSV has no explicit empty form (JSON has: "roas": [])
            raise VRPFileError(p, "", "no VRPs (a CSV file with no entries is not an empty set)")
    return out


def _load_json(
    path: str,
    data: bytes,
    now: float,
    ignore_expires: bool,
    progress: LoadProgress | None = None,
    keep_ta: bool = False,
) -> VRPSet:
    try:
        doc = _loads(data)
    except ValueError as e:
        raise VRPFileError(path, "", f"not valid JSON: {e}") from None
    if isinstance(doc, list):  # a bare list of VRP objects
        doc = {"roas": doc}
    if not isinstance(doc, dict):
        raise VRPFileError(path, "", "top level is neither an object nor a list")
    roas = doc.get("roas", doc.get("vrps"))
    if roas is None:
        raise VRPFileError(path, "", "no 'roas' list (rpki-client / StayRTR / Routinator JSON)")
    if not isinstance(roas, list):
        raise VRPFileError(path, "roas", "is not a list")
    out = VRPSet(format="json", tas={} if keep_ta else None)
    vrps = out.vrps
    tas = out.tas
    for i, r in enumerate(roas):
        if progress is not None and not i & _EVERY:
            progress("entries", i, len(roas))
        where = f"roas[{i}]"
        try:
            _object(r, "prefix, maxLength, asn")
            if not ignore_expires and _expired(r, now):
                out.expired += 1
                continue
            # host bits set: refused like SLURM (RFC 8416 §3.4.1) does, never silently masked
            addr, plen = parse_prefix(r["prefix"])
            ml = r.get("maxLength", r.get("max_length", plen))
            if ml is None:
                ml = plen
            if isinstance(ml, str) and ml.strip().isdigit():
                ml = int(ml)
            if not isinstance(ml, int) or isinstance(ml, bool):
                raise ValueError(f"maxLength must be a whole number, got {_kind(ml)}")
            if not plen <= ml <= len(addr) * 8:
                raise ValueError(f"maxLength {ml} outside {plen}..{len(addr) * 8}")
            asn = parse_asn(r["asn"])
        except KeyError as e:
            raise VRPFileError(path, where, f"missing key {e}") from None
        except ValueError as e:
            raise VRPFileError(path, where, str(e)) from None
        except (TypeError, AttributeError):  # a shape not foreseen above: no Python text
            raise VRPFileError(
                path, where, 'expected {"prefix": STRING, "maxLength": NUMBER, "asn": NUMBER}'
            ) from None
        v = VRP(addr, plen, ml, asn)
        if tas is not None and isinstance(ta := r.get("ta"), str) and ta:
            tas.setdefault(v, ta)
        out.entries += 1
        if v in vrps:
            out.duplicates += 1
        else:
            vrps.add(v)
    if progress is not None:
        progress("entries", len(roas), len(roas))
    _load_json_aspa(path, doc, out, now, ignore_expires)
    _load_json_keys(path, doc, out)
    return out


def _expired(entry: dict, now: float) -> bool:
    """rpki-client's per-entry ``expires`` (Unix time) lies in the past."""
    exp = entry.get("expires")
    if exp is not None and (not isinstance(exp, int | float) or isinstance(exp, bool)):
        raise ValueError(f"'expires' must be a Unix time (a number), got {_kind(exp)}")
    return exp is not None and exp < now


def _load_json_aspa(path: str, doc: dict, out: VRPSet, now: float, ignore_expires: bool) -> None:
    lists: list[tuple[str, Any]] = []
    if isinstance(doc.get("aspas"), list):
        lists.append(("aspas", doc["aspas"]))
    pa = doc.get("provider_authorizations")
    if isinstance(pa, dict):
        for afi in ("ipv4", "ipv6"):
            if isinstance(pa.get(afi), list):
                lists.append((f"provider_authorizations.{afi}", pa[afi]))
    elif isinstance(pa, list):
        lists.append(("provider_authorizations", pa))
    merged: dict[int, set[int]] = {}
    for name, items in lists:
        for i, a in enumerate(items):
            where = f"{name}[{i}]"
            try:
                _object(a, "customer_asid, providers")
                if not ignore_expires and _expired(a, now):
                    out.expired_aspas += 1
                    continue
                if "customer_asid" not in a and "customer" not in a:
                    raise KeyError("customer_asid")
                cust = parse_asn(a.get("customer_asid", a.get("customer")))
                provs = a["providers"]
                if not isinstance(provs, list):
                    raise ValueError(f"'providers' must be a list of ASNs, got {_kind(provs)}")
                pset = {
                    parse_asn(_object(p, "provider_asid")["provider_asid"])
                    if isinstance(p, dict)
                    else parse_asn(p)
                    for p in provs
                }
            except KeyError as e:
                raise VRPFileError(path, where, f"missing key {e}") from None
            except ValueError as e:
                raise VRPFileError(path, where, str(e)) from None
            except (TypeError, AttributeError):
                raise VRPFileError(
                    path, where, 'expected {"customer_asid": NUMBER, "providers": [NUMBER, ...]}'
                ) from None
            # One provider set per customer for both AFIs (aspa-verification §7.1): union them.
            merged.setdefault(cust, set()).update(pset)
    for cust, pset in merged.items():
        if len(pset) > 1:
            pset.discard(0)  # AS0 alongside real providers has no effect (bis §10)
        if not pset:
            pset = {0}
        out.aspas[cust] = tuple(sorted(pset))


def _load_json_keys(path: str, doc: dict, out: VRPSet) -> None:
    keys = doc.get("bgpsec_keys") or doc.get("router_keys") or []
    if not isinstance(keys, list):
        raise VRPFileError(path, "bgpsec_keys", f"must be a list, got {_kind(keys)}")
    for i, k in enumerate(keys):
        where = f"bgpsec_keys[{i}]"
        try:
            _object(k, "asn, ski, pubkey")
            asn = parse_asn(k["asn"])
            ski_s = k["ski"]
            try:
                ski = bytes.fromhex(ski_s)
            except (TypeError, ValueError):
                raise ValueError(
                    f"'ski' must be 40 hexadecimal digits, got {_kind(ski_s)}"
                ) from None
            if len(ski) != 20:
                raise ValueError(f"SKI is {len(ski)} octets, expected 20")
            try:
                spki = base64.b64decode(k["pubkey"], validate=False)
            except (TypeError, ValueError):
                raise ValueError(
                    f"'pubkey' must be base64 (DER SubjectPublicKeyInfo), got {_kind(k['pubkey'])}"
                ) from None
            if not spki:
                raise ValueError("empty pubkey")
        except KeyError as e:
            raise VRPFileError(path, where, f"missing key {e}") from None
        except ValueError as e:
            raise VRPFileError(path, where, str(e)) from None
        except (TypeError, AttributeError):
            raise VRPFileError(
                path, where, 'expected {"asn": NUMBER, "ski": HEX, "pubkey": BASE64}'
            ) from None
        out.router_keys.add(RouterKey(ski, asn, spki))


def _load_csv(
    path: str, data: bytes, progress: LoadProgress | None = None, keep_ta: bool = False
) -> VRPSet:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VRPFileError(path, "", f"not UTF-8 text: {e}") from None
    out = VRPSet(format="csv", tas={} if keep_ta else None)
    rows = csv.reader(io.StringIO(text))
    order: tuple[int, int, int] | None = None  # column indexes of prefix, maxlen, asn
    for lineno, row in enumerate(rows, 1):
        if progress is not None and not lineno & _EVERY:
            progress("entries", lineno, None)
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        where = f"line {lineno}"
        if order is None:
            order = _csv_columns(cells)
            if order is None:  # header line
                low = [c.lower() for c in cells]
                order = _csv_header(low)
                if order is None:
                    raise VRPFileError(path, where, f"unrecognised CSV header {row!r}")
                continue
        try:
            pi, mi, ai = order
            addr, plen = parse_prefix(cells[pi])
            ml_s = cells[mi] if mi < len(cells) else ""
            if ml_s and not ml_s.isdigit():
                raise ValueError(f"max length {ml_s!r} is not a whole number")
            ml = int(ml_s) if ml_s else plen
            if not plen <= ml <= len(addr) * 8:
                raise ValueError(f"max length {ml} outside {plen}..{len(addr) * 8}")
            asn = parse_asn(cells[ai])
        except (ValueError, IndexError) as e:
            raise VRPFileError(path, where, f"{e} in {','.join(row)!r}") from None
        v = VRP(addr, plen, ml, asn)
        if out.tas is not None and order == (1, 2, 0) and len(cells) > 3 and cells[3]:
            out.tas.setdefault(v, cells[3])  # ASN,IP Prefix,Max Length,Trust Anchor
        out.entries += 1
        if v in out.vrps:
            out.duplicates += 1
        else:
            out.vrps.add(v)
    return out


def _csv_columns(cells: list[str]) -> tuple[int, int, int] | None:
    """Guess (prefix, maxlen, asn) columns from a data row; None if this looks like a header."""
    if len(cells) < 2:
        return None
    pi = next((i for i, c in enumerate(cells) if "/" in c), None)
    if pi is None:
        return None
    if cells[0].lower().startswith("as") or (pi == 1 and cells[0].isdigit()):
        return (1, 2, 0)  # rpki-client / Routinator: ASN,IP Prefix,Max Length,Trust Anchor
    return (0, 1, 2)  # simple: prefix,maxLength,asn


def _csv_header(low: list[str]) -> tuple[int, int, int] | None:
    def idx(*names: str) -> int | None:
        for i, c in enumerate(low):
            if any(n in c for n in names):
                return i
        return None

    pi = idx("prefix")
    mi = idx("max")
    ai = idx("asn", "origin", "as")
    if pi is None or ai is None:
        return None
    return (pi, mi if mi is not None else len(low) + 1, ai)


def vrps_to_json(
    vrps: Iterable[VRP],
    aspas: dict[int, tuple[int, ...]] | None = None,
    router_keys: Iterable[RouterKey] = (),
    *,
    buildtime: str | None = None,
    tas: dict[VRP, str] | None = None,
) -> dict:
    """An rpki-client style JSON document (``roas``, ``aspas``, ``bgpsec_keys``).  A ROA
    carries ``ta`` only when ``tas`` knows it (RTR does not carry the trust anchor)."""
    vl = sorted(vrps, key=lambda v: (len(v.addr), v.addr, v.plen, v.maxlen, v.asn))
    doc: dict[str, Any] = {
        "metadata": {
            "buildtime": buildtime or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "generator": "rov-router",
            "vrps": len(vl),
        },
        "roas": [
            {"prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn, "ta": tas[v]}
            if tas and v in tas
            else {"prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn}
            for v in vl
        ],
        "bgpsec_keys": [
            {"asn": k.asn, "ski": k.ski.hex(), "pubkey": base64.b64encode(k.spki).decode()}
            for k in sorted(router_keys)
        ],
        "aspas": [
            {"customer_asid": c, "providers": list(p)} for c, p in sorted((aspas or {}).items())
        ],
    }
    return doc


def vrps_to_csv(vrps: Iterable[VRP], tas: dict[VRP, str] | None = None) -> str:
    """The VRPs in the CSV that Routinator (``--format csv``) and rpki-client (``-c``) write:
    ``ASN,IP Prefix,Max Length,Trust Anchor``.  The column stays when the trust anchor is not
    known (RTR does not carry it): empty, so readers that go by position still line up."""
    rows = sorted(vrps, key=lambda v: (len(v.addr), v.addr, v.plen, v.maxlen, v.asn))
    tas = tas or {}
    return "ASN,IP Prefix,Max Length,Trust Anchor\n" + "".join(
        f"AS{v.asn},{v.prefix},{v.maxlen},{tas.get(v, '')}\n" for v in rows
    )


_B4 = struct.Struct("!BBBx4sI")
_B6 = struct.Struct("!BBBx16sI")


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
