"""MRT (RFC 6396) BGP update / RIB files as a feed of announcements and withdrawals.

Reading uses mrtparse (``pip install mrtparse``): BGP4MP / BGP4MP_ET messages (UPDATEs with
their time, peer and AS path) and TABLE_DUMP / TABLE_DUMP_V2 RIB entries (announcements at the
dump's time).  :func:`replay_plan` turns them into the paced, batched sequence of announcements
and withdrawals a speaker sends (``rov-router replay`` and the lab's replay step both follow
it; the ExaBGP codec writes the command text).  :func:`cut` copies raw records selected by a predicate into a new MRT file, which
is how the small fixtures under ``topologies/data`` were made from the RouteViews files.
"""

from __future__ import annotations

import bz2
import gzip
import ipaddress
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
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


#: ``progress(bytes_read, file_size)``: how much of the file (as stored: compressed) is read
ReadProgress = Callable[[int, int], None]


def _mrtparse():
    """``import mrtparse`` without its side effect: at import it sets SIGPIPE to the default
    action, which would make a write to a closed pipe or socket (an ExaBGP child that has just
    stopped, a ``show`` client gone) kill the whole process without a word.  The disposition
    the process had is put back."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    try:
        import mrtparse
    finally:
        if before is not None and signal.getsignal(signal.SIGPIPE) != before:
            signal.signal(signal.SIGPIPE, before)
    return mrtparse


def _records(path: str | Path, progress: ReadProgress | None = None) -> Iterator[dict]:
    """mrtparse's decoding of every record, each checked: a record mrtparse could not decode
    (truncated, an unknown type, a bit flip) or a broken compressed stream raises
    :class:`MRTError` naming the record number and its (uncompressed) byte offset."""
    mrtparse = _mrtparse()

    try:
        reader = mrtparse.Reader(str(path))
        size = os.fstat(reader.f.fileno()).st_size
    except (EOFError, OSError, zlib.error) as e:
        raise MRTError(_compressed_error(path, 0, 0, e)) from None
    n = 0
    while True:
        if progress is not None and not n & 0xFF:
            progress(os.lseek(reader.f.fileno(), 0, os.SEEK_CUR), size)
        offset = reader.f.tell()
        try:
            e = next(reader)
        except StopIteration:
            if progress is not None:
                progress(size, size)
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
    path: str | Path,
    *,
    peer_as: int | None = None,
    within: str | None = None,
    progress: ReadProgress | None = None,
) -> Iterator[MRTUpdate]:
    """BGP UPDATEs (and RIB entries) of an MRT file, optionally only from one peer AS and only
    for prefixes equal to or inside ``within`` (or covering it, down to a /16).  ``progress``
    is told the bytes read every 256 records."""
    net = ipaddress.ip_network(within) if within else None

    def keep(prefix: str) -> bool:
        if net is None:
            return True
        p = ipaddress.ip_network(prefix, strict=False)
        if p.version != net.version:
            return False
        return p.subnet_of(net) or (net.subnet_of(p) and p.prefixlen >= 16)

    for n, d in enumerate(_records(path, progress), 1):
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


# ---- replay: the one loop that paces and batches a file's updates --------------------------


@dataclass(frozen=True)
class ReplayWait:
    """Hold off until ``at`` seconds after the start of the replay (the file's own timeline)."""

    at: float


@dataclass(frozen=True)
class ReplayAnnounce:
    """Announce ``prefixes`` (one family) with one next hop and AS path."""

    prefixes: list[str]
    next_hop: str
    path: tuple[int, ...]
    as_set: tuple[int, ...]


@dataclass(frozen=True)
class ReplayWithdraw:
    """Withdraw ``prefixes`` (all the withdrawals of one update, in the file's order)."""

    prefixes: list[str]


@dataclass(frozen=True)
class ReplayNote:
    """One prefix of ``update``, in the file's order, once its command is due or sent: for
    narration.  ``path`` is the AS path announced, ``None`` for a withdrawal."""

    update: MRTUpdate
    prefix: str
    path: tuple[int, ...] | None


ReplayStep = ReplayWait | ReplayAnnounce | ReplayWithdraw | ReplayNote


def replay_plan(
    updates: Sequence[MRTUpdate],
    *,
    next_hop: Callable[[str], str],
    prepend: int | None = None,
    speed: float = 0.0,
    batch: int = 100,
) -> Iterator[ReplayStep]:
    """What a speaker replaying ``updates`` does, step by step.  With ``speed`` > 0 each update
    is due at its file time (relative to the first) divided by ``speed`` (a :class:`ReplayWait`
    first); 0 sends as fast as possible.  Prefixes sharing family, next hop and AS path go out
    together, at most ``batch`` per announcement; pending announcements are sent before any
    wait and before a withdrawal (which must not be overtaken).  ``prepend`` is put in front of
    each AS path unless the path already starts with it (the speaker's own AS)."""
    pending: dict[tuple[str, str, tuple[int, ...], tuple[int, ...]], list[str]] = {}

    def flush(key=None) -> Iterator[ReplayStep]:
        for k in [key] if key is not None else list(pending):
            prefixes = pending.pop(k, [])
            if prefixes:
                yield ReplayAnnounce(prefixes, k[1], k[2], k[3])

    if not updates:
        return
    t0 = updates[0].time
    for u in updates:
        if speed > 0:
            yield from flush()
            yield ReplayWait((u.time - t0) / speed)
        for prefix, seq, sets in u.announced:
            path = tuple(seq) if prepend is None or (seq and seq[0] == prepend) else (prepend, *seq)
            key = ("6" if ":" in prefix else "4", next_hop(prefix), path, tuple(sets))
            pending.setdefault(key, []).append(prefix)
            if len(pending[key]) >= batch:
                yield from flush(key)
            yield ReplayNote(u, prefix, path)
        if u.withdrawn:
            yield from flush()
            yield ReplayWithdraw(list(u.withdrawn))
            for prefix in u.withdrawn:
                yield ReplayNote(u, prefix, None)
    yield from flush()
