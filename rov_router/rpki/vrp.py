"""Loaders for VRP files (the payload types themselves are in :mod:`rov_router.rpki.payload`).

Formats read: rpki-client JSON (``roas``, ``bgpsec_keys``, ``aspas`` or the older per-AFI
``provider_authorizations``), StayRTR / Routinator JSON (the same shape; ASNs as numbers or
``"AS123"``), rpki-client / Routinator CSV (``ASN,IP Prefix,Max Length,Trust Anchor``) and a
simple CSV (``prefix,maxLength,asn``).  ``.gz``, ``.bz2`` and ``.xz`` files are decompressed.

A file with a bad entry is refused as a whole with :class:`VRPFileError` naming the file, the
entry and the reason, so callers keep whatever data they already hold.

Over 500 lines because it reads four file formats, each with a fast path for the common shape
and a careful path that names a bad entry; the two paths are kept side by side on purpose.
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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..gcpause import gc_paused

# the payload types, re-exported: callers (and the tests) import them from here too
from .payload import VRP as VRP
from .payload import ASPARecord as ASPARecord
from .payload import RouterKey as RouterKey
from .payload import VRPBatch as VRPBatch
from .payload import format_prefix as format_prefix
from .payload import kind_of as _kind
from .payload import parse_prefix as parse_prefix

try:  # orjson parses the 58 MB rpki-client export about 3x faster than the json module
    import orjson as _json

    def _loads(data: bytes) -> Any:
        return _json.loads(data)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    import json as _stdjson

    def _loads(data: bytes) -> Any:
        return _stdjson.loads(data)


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------


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
    with gc_paused():  # hundreds of thousands of new objects, none in a cycle
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
    n = len(roas)
    if progress is not None:
        progress("entries", 0, n)
    # the fast path reads the common shape in one go; trust anchors (kept only for exports)
    # need each entry's VRP, which the careful loop gives entry by entry
    fast = None if keep_ta else _fast_roas(roas, now, ignore_expires)
    if fast is None:  # an entry off the common shape: the careful loop names the culprit
        checked = []
        for i, r in enumerate(roas):
            if progress is not None and not i & _EVERY:
                progress("entries", i, n)
            checked.append(_parse_roa(path, i, r, now, ignore_expires))
        if out.tas is not None:
            tas = out.tas
            for r, v in zip(roas, checked, strict=True):
                if v is not None and isinstance(ta := r.get("ta"), str) and ta:
                    tas.setdefault(v, ta)
        parsed = [v for v in checked if v is not None]
        expired = len(checked) - len(parsed)
        del checked
    else:
        parsed, expired = fast
    out.expired = expired
    out.entries = len(parsed)
    out.vrps = set(parsed)
    out.duplicates = out.entries - len(out.vrps)
    del parsed
    if progress is not None:
        progress("entries", n, n)
    _load_json_aspa(path, doc, out, now, ignore_expires)
    _load_json_keys(path, doc, out)
    return out


_PLEN4 = {str(i): i for i in range(33)}
_PLEN6 = {str(i): i for i in range(129)}
_HOST4 = [(1 << (32 - i)) - 1 for i in range(33)]
_HOST6 = [(1 << (128 - i)) - 1 for i in range(129)]


def _fast_roas(roas: list, now: float, ignore_expires: bool) -> tuple[list[VRP], int] | None:
    """The ``roas`` list when every entry has the common rpki-client shape (``prefix`` a
    string in canonical form, ``maxLength`` and ``asn`` whole numbers in range, ``expires``
    absent or a number): the VRPs (duplicates kept) and how many entries had expired.  None as
    soon as one entry is off that shape; :func:`_parse_roa` then reads the list and names it."""
    pton = socket.inet_pton
    af4, af6 = socket.AF_INET, socket.AF_INET6
    plen4, plen6, host4, host6 = _PLEN4, _PLEN6, _HOST4, _HOST6
    from_bytes = int.from_bytes
    new = tuple.__new__
    out: list[VRP] = []
    append = out.append
    expired = 0
    try:
        for r in roas:
            if r.__class__ is not dict:
                return None
            ml = r.get("maxLength")
            asn = r.get("asn")
            if ml.__class__ is not int or asn.__class__ is not int or not 0 <= asn <= 0xFFFFFFFF:
                return None
            if not ignore_expires:
                exp = r.get("expires")
                if exp is not None:
                    if exp.__class__ is not int and exp.__class__ is not float:
                        return None
                    if exp < now:
                        expired += 1
                        continue
            a, _, ls = r["prefix"].partition("/")
            if ":" in a:
                plen = plen6[ls]
                addr = pton(af6, a)
                if from_bytes(addr) & host6[plen] or not plen <= ml <= 128:
                    return None
            else:
                plen = plen4[ls]
                addr = pton(af4, a)
                if from_bytes(addr) & host4[plen] or not plen <= ml <= 32:
                    return None
            append(new(VRP, (addr, plen, ml, asn)))
    except (KeyError, TypeError, AttributeError, OSError, ValueError):
        return None
    return out, expired


def _parse_roa(path: str, i: int, r: Any, now: float, ignore_expires: bool) -> VRP | None:
    """One ``roas`` entry, checked with a precise error (VRPFileError); None: expired."""
    where = f"roas[{i}]"
    try:
        _object(r, "prefix, maxLength, asn")
        if not ignore_expires and _expired(r, now):
            return None
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
    return VRP(addr, plen, ml, asn)


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
