"""Seeded mutation fuzzing of the RTR code that a peer can reach: the PDU decoder (and framer),
the router-side session with the VRP store behind it, and the cache's per-router session.

Every input is built from real encodings (every PDU type in every version, whole transfers,
query streams) and mutated (bit flips, byte overwrites, length fields, version / type bytes,
truncation, insertion, splicing).  It is fed in random chunk sizes.  What counts:

* **escape**: any exception other than the protocol's own (:class:`PDUError` from ``decode``;
  nothing at all from the sessions, which must turn every bad input into an Error Report /
  log line), or a broken invariant: a session that errors must leave the store as it was at
  the last End of Data (fail safe), a closed cache session must not keep answering.
* **hang**: one input taking longer than ``hang_after`` seconds.

Deterministic: ``run(target, n, seed)`` gives the same inputs for the same seed.
"""

from __future__ import annotations

import random
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP, ASPARecord, RouterKey
from rov_router.rtr import pdu as P
from rov_router.rtr import session as S
from rov_router.rtr.cache import CacheState
from rov_router.rtr.cache_session import ServerSession
from rov_router.rtr.client import pump

VRPS = [
    VRP.parse("192.0.2.0/24", 24, 64496),
    VRP.parse("198.51.100.0/22", 24, 64497),
    VRP.parse("10.0.0.0/8", 16, 0),
    VRP.parse("2001:db8::/32", 48, 64498),
    VRP.parse("2001:db8:1::/48", 48, 4200000000),
]
KEY = RouterKey(bytes(range(20)), 64496, b"\x30\x13" + bytes(19))
ASPA = ASPARecord(64496, (64497, 64500))


def _pdus(version: int) -> list[bytes]:
    out = [
        P.SerialNotify(version, 7, 3).encode(),
        P.SerialQuery(version, 7, 3).encode(),
        P.ResetQuery(version).encode(),
        P.CacheResponse(version, 7).encode(),
        P.CacheReset(version).encode(),
        P.EndOfData(version, 7, 4, 3600, 600, 7200).encode(),
        P.ErrorReport(version, 2, P.ResetQuery(version).encode(), "no data").encode(),
    ]
    out += [P.encode_prefix(version, a, v) for v in VRPS for a in (True, False)]
    if version >= 1:
        out += [P.RouterKeyPDU(version, a, KEY).encode() for a in (True, False)]
    if version >= 2:
        out += [P.ASPAPDU(version, True, ASPA).encode(), P.ASPAPDU(version, False, ASPA).encode()]
    return out


SEEDS = {v: _pdus(v) for v in (0, 1, 2)}


def transfer(version: int, rng: random.Random, *, reset: bool = True) -> bytes:
    """A whole answer: Cache Response, payload, End of Data (sometimes a notify first)."""
    parts = []
    if rng.random() < 0.2:
        parts.append(P.SerialNotify(version, 7, 4).encode())
    parts.append(P.CacheResponse(version, 7).encode())
    for v in rng.sample(VRPS, rng.randint(0, len(VRPS))):
        parts.append(P.encode_prefix(version, reset or rng.random() < 0.7, v))
    if version >= 1 and rng.random() < 0.5:
        parts.append(P.RouterKeyPDU(version, True, KEY).encode())
    if version >= 2 and rng.random() < 0.5:
        parts.append(P.ASPAPDU(version, True, ASPA).encode())
    parts.append(P.EndOfData(version, 7, 4, 3600, 600, 7200).encode())
    return b"".join(parts)


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        op = rng.randrange(10)
        if not b:
            b += rng.randbytes(rng.randint(1, 16))
            continue
        i = rng.randrange(len(b))
        if op == 0:  # bit flip
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # byte overwrite, interesting values
            b[i] = rng.choice((0, 1, 2, 3, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:  # a length field (offset 4 of some header-looking spot)
            j = max(0, i - i % 4)
            val = rng.choice((0, 1, 7, 8, 12, 20, 24, 32, 65535, 65536, 0xFFFFFFFF))
            b[j : j + 4] = val.to_bytes(4, "big")
        elif op == 3:  # version byte
            b[i - i % 8 if i % 8 else i] = rng.choice((0, 1, 2, 3, 255))
        elif op == 4:  # type byte
            j = (i - i % 8) + 1
            if j < len(b):
                b[j] = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 255))
        elif op == 5:  # truncate
            del b[i:]
        elif op == 6:  # insert random bytes
            b[i:i] = rng.randbytes(rng.randint(1, 40))
        elif op == 7:  # duplicate a slice
            j = rng.randrange(i, len(b) + 1)
            b[j:j] = b[i:j]
        elif op == 8:  # splice a seed PDU in
            b[i:i] = rng.choice(SEEDS[rng.randrange(3)])
        else:  # delete a slice
            del b[i : i + rng.randint(1, 24)]
    return bytes(b)


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.choice((1, 3, 8, 20, 64, 1000, len(data)))
        out.append(data[i : i + n])
        i += n
    return out or [b""]


# ---- targets: each takes (rng) and raises on an escape ------------------------------------------


class Escape(Exception):
    pass


def target_decode(rng: random.Random) -> None:
    v = rng.randrange(3)
    raw = mutate(rng.choice(SEEDS[v]), rng)
    try:
        P.decode(raw, aspa_draft10=rng.random() < 0.2)
    except P.PDUError:
        pass
    f = P.Framer()
    f.feed(raw + mutate(rng.choice(SEEDS[v]), rng))
    try:
        for _ in f:
            pass
        if rng.random() < 0.5:
            f.take_prefixes(v, _Batch())
    except P.PDUError:
        pass


class _Batch:
    def __init__(self) -> None:
        self.v4 = bytearray()
        self.v6 = bytearray()


def _table(store: VRPStore) -> tuple:
    return (frozenset(store.iter_vrps()), tuple(sorted(store.aspas().items())))


def target_client(rng: random.Random) -> None:
    """A session that already holds data gets a mutated transfer (or a stream of junk)."""
    version = rng.randrange(3)
    now = [100.0]
    sess = S.ClientSession(
        "fuzz", max_version=version, clock=lambda: now[0], max_records=50, max_errors=4
    )
    store = VRPStore()
    pump(sess, store, sess.connection_made())
    sess.data_to_send()
    good = transfer(version, rng)
    pump(sess, store, sess.receive_data(good))
    held = _table(store)
    stream = b"".join(
        mutate(transfer(version, rng, reset=False), rng)
        if rng.random() < 0.8
        else rng.randbytes(40)
        for _ in range(rng.randint(1, 3))
    )
    if sess.state is S.State.ESTABLISHED:
        sess._send_query()  # as the refresh timer would
        sess.data_to_send()

    def check(evs: list) -> None:
        nonlocal held
        if any(isinstance(e, S.Synced) for e in evs):
            held = _table(store)
        elif any(isinstance(e, S.FlushRequired) for e in evs):
            held = _table(store)
            if held[0]:
                raise Escape("a flush left VRPs in the store")
        elif _table(store) != held:
            raise Escape("the table changed without End of Data or a flush")

    for c in chunks(stream, rng):
        evs, close = pump(sess, store, sess.receive_data(c))
        sess.data_to_send()
        check(evs)
        if close is not None:
            check(pump(sess, store, sess.connection_lost())[0])
            break
        now[0] += rng.choice((0.0, 1.0, 400.0))
        check(pump(sess, store, sess.tick())[0])
        sess.data_to_send()
    if len(sess.errors) > 4:
        raise Escape(f"{len(sess.errors)} error texts kept (bound 4)")


def target_cache(rng: random.Random) -> None:
    cache = _CACHE
    s = ServerSession(cache, "fuzz", clock=lambda: 0.0)
    version = rng.randrange(3)
    queries = [P.ResetQuery(version).encode(), P.SerialQuery(version, cache.session_id, 0).encode()]
    stream = b"".join(
        mutate(rng.choice(queries + SEEDS[rng.randrange(3)]), rng) for _ in range(rng.randint(1, 4))
    )
    for c in chunks(stream, rng):
        s.receive_data(c)
        for _ in range(10):
            s.data_to_send()
            if not s.holding:
                break
            s.resume()
        if s.closed:
            s.receive_data(rng.choice(queries))
            if s.data_to_send():
                raise Escape("a closed session answered")
            break


_CACHE = CacheState(session_id=7)
_CACHE.set_data(set(VRPS[:3]), {64496: (64497,)}, [KEY])
_CACHE.set_data(set(VRPS), {64496: (64497, 64500)}, [KEY])

TARGETS: dict[str, Callable[[random.Random], None]] = {
    "decode": target_decode,
    "client": target_client,
    "cache": target_cache,
}


@dataclass
class Result:
    target: str
    inputs: int = 0
    escapes: int = 0
    hangs: int = 0
    slowest: float = 0.0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)


def run(target: str, n: int, seed: int, *, hang_after: float = 1.0) -> Result:
    fn = TARGETS[target]
    res = Result(target)
    t0 = time.perf_counter()
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        t = time.perf_counter()
        try:
            fn(rng)
        except Exception as e:
            res.escapes += 1
            if len(res.examples) < 5:
                res.examples.append(
                    f"input {i} (seed {seed}): {type(e).__name__}: {e}\n"
                    + "".join(traceback.format_exception(e)[-3:])
                )
        dt = time.perf_counter() - t
        res.slowest = max(res.slowest, dt)
        if dt > hang_after:
            res.hangs += 1
        res.inputs += 1
    res.seconds = time.perf_counter() - t0
    return res


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
