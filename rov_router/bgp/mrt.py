"""MRT (RFC 6396) BGP update / RIB files as a feed of announcements and withdrawals.

Reading uses mrtparse (``pip install mrtparse``): BGP4MP / BGP4MP_ET messages (UPDATEs with
their time, peer and AS path) and TABLE_DUMP / TABLE_DUMP_V2 RIB entries (announcements at the
dump's time).  :func:`cut` copies raw records selected by a predicate into a new MRT file, which
is how the small fixtures under ``topologies/data`` were made from the RouteViews files.
"""

from __future__ import annotations

import bz2
import gzip
import ipaddress
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


class MRTError(ValueError):
    """An MRT file that cannot be read: names the file and the record (number and offset)."""


@dataclass
class MRTUpdate:
    time: float
    peer_as: int
    peer_ip: str
    announced: list[tuple[str, list[int], list[int]]] = field(
        default_factory=list
    )  # prefix, seq, set
    withdrawn: list[str] = field(default_factory=list)
    next_hop: str | None = None


def _open(path: str | Path):
    p = str(path)
    if p.endswith(".gz"):
        return gzip.open(p, "rb")
    if p.endswith(".bz2"):
        return bz2.open(p, "rb")
    return open(p, "rb")


def raw_records(path: str | Path) -> Iterator[bytes]:
    """Every MRT record of a file, as bytes (12-byte header + body)."""
    n = offset = 0
    with _open(path) as f:
        while True:
            try:
                hdr = f.read(12)
                if not hdr:
                    return
                if len(hdr) < 12:
                    raise MRTError(
                        f"{path}: record {n + 1} at offset {offset}: truncated MRT header "
                        f"({len(hdr)} of 12 bytes)"
                    )
                length = struct.unpack("!I", hdr[8:12])[0]
                body = f.read(length)
            except (EOFError, OSError, zlib.error) as e:
                raise MRTError(_compressed_error(path, n, offset, e)) from None
            if len(body) < length:
                raise MRTError(
                    f"{path}: record {n + 1} at offset {offset}: truncated MRT record "
                    f"({len(body)} of {length} bytes)"
                )
            n += 1
            offset += 12 + length
            yield hdr + body


def _compressed_error(path: str | Path, n: int, offset: int, e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno is not None:  # no such file, permission denied
        return f"{path}: cannot read: {e.strerror or e}"
    what = "ends early" if isinstance(e, EOFError) else f"is corrupt ({e})"
    return f"{path}: compressed data {what} in record {n + 1} (uncompressed offset {offset})"


def _records(path: str | Path) -> Iterator[dict]:
    """mrtparse's decoding of every record, each checked: a record mrtparse could not decode
    (truncated, an unknown type, a bit flip) or a broken compressed stream raises
    :class:`MRTError` naming the record number and its (uncompressed) byte offset."""
    import mrtparse

    try:
        reader = mrtparse.Reader(str(path))
    except (EOFError, OSError, zlib.error) as e:
        raise MRTError(_compressed_error(path, 0, 0, e)) from None
    n = 0
    while True:
        offset = reader.f.tell()
        try:
            e = next(reader)
        except StopIteration:
            return
        except (EOFError, OSError, zlib.error) as ex:
            raise MRTError(_compressed_error(path, n, offset, ex)) from None
        except Exception as ex:
            raise MRTError(
                f"{path}: record {n + 1} at offset {offset}: cannot decode "
                f"({type(ex).__name__}: {ex})"
            ) from None
        n += 1
        if e.err:
            raise MRTError(f"{path}: record {n} at offset {offset}: {e.err_msg}")
        yield e.data


def _path(attrs: list[dict]) -> tuple[list[int], list[int], str | None]:
    seq: list[int] = []
    sets: list[int] = []
    nh = None
    as4 = None
    for a in attrs:
        names = set(a["type"].values())
        if "AS_PATH" in names or "AS4_PATH" in names:
            s2: list[int] = []
            t2: list[int] = []
            for seg in a["value"]:
                kind = next(iter(seg["type"].values()))
                (s2 if kind == "AS_SEQUENCE" else t2).extend(int(x) for x in seg["value"])
            if "AS4_PATH" in names:
                as4 = (s2, t2)
            else:
                seq, sets = s2, t2
        elif "NEXT_HOP" in names:
            nh = a["value"]
    if as4 is not None:  # RFC 6793: the AS4_PATH replaces the tail of the 2-byte path
        seq = seq[: max(0, len(seq) - len(as4[0]))] + as4[0]
        sets = as4[1] or sets
    return seq, sets, nh


def read_updates(
    path: str | Path, *, peer_as: int | None = None, within: str | None = None
) -> Iterator[MRTUpdate]:
    """BGP UPDATEs (and RIB entries) of an MRT file, optionally only from one peer AS and only
    for prefixes equal to or inside ``within`` (or covering it, down to a /16)."""
    net = ipaddress.ip_network(within) if within else None

    def keep(prefix: str) -> bool:
        if net is None:
            return True
        p = ipaddress.ip_network(prefix, strict=False)
        if p.version != net.version:
            return False
        return p.subnet_of(net) or (net.subnet_of(p) and p.prefixlen >= 16)

    for n, d in enumerate(_records(path), 1):
        try:
            yield from _updates_of(d, peer_as, keep)
        except MRTError:
            raise
        except Exception as ex:  # a field of an unexpected shape: name the record
            raise MRTError(
                f"{path}: record {n}: unexpected content ({type(ex).__name__}: {ex})"
            ) from None


def _updates_of(d: dict, peer_as: int | None, keep: Callable[[str], bool]) -> Iterator[MRTUpdate]:
    ts = float(
        d.get("timestamp", {}).keys().__iter__().__next__()
        if isinstance(d.get("timestamp"), dict)
        else d.get("timestamp", 0)
    )
    bm = d.get("bgp_message")
    if bm is not None:
        pas = int(d.get("peer_as", 0))
        if peer_as is not None and pas != peer_as:
            return
        if "UPDATE" not in set(bm.get("type", {}).values()):
            return
        seq, sets, nh = _path(bm.get("path_attributes", []))
        for a in bm.get("path_attributes", []):
            if "MP_REACH_NLRI" in set(a["type"].values()):
                nh = nh or (a["value"].get("next_hop") or [None])[0]
        up = MRTUpdate(ts, pas, str(d.get("peer_ip", "")), next_hop=nh)
        nlri = list(bm.get("nlri", []))
        wd = list(bm.get("withdrawn_routes", []))
        for a in bm.get("path_attributes", []):
            names = set(a["type"].values())
            if "MP_REACH_NLRI" in names:
                nlri += a["value"].get("nlri", [])
            elif "MP_UNREACH_NLRI" in names:
                wd += a["value"].get("withdrawn_routes", [])
        for n in nlri:
            p = f"{n['prefix']}/{n['length']}"
            if keep(p):
                up.announced.append((p, seq, sets))
        for n in wd:
            p = f"{n['prefix']}/{n['length']}"
            if keep(p):
                up.withdrawn.append(p)
        if up.announced or up.withdrawn:
            yield up
    elif "rib_entries" in d:
        p = f"{d['prefix']}/{d['length']}"
        if not keep(p):
            return
        for r in d["rib_entries"]:
            seq, sets, nh = _path(r.get("path_attributes", []))
            up = MRTUpdate(ts, int(r.get("peer_index", 0)), "", next_hop=nh)
            up.announced.append((p, seq, sets))
            yield up


def cut(sources: list[Path], dest: Path, keep: Callable[[dict], bool]) -> int:
    """Copy the raw records whose mrtparse decoding satisfies ``keep`` into ``dest`` (.gz)."""
    n = 0
    with gzip.open(dest, "wb") as out:
        for src in sources:
            for raw, data in zip(raw_records(src), _records(src), strict=True):
                if keep(data):
                    out.write(raw)
                    n += 1
    return n
