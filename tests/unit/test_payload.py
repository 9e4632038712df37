"""The payload seam between RTR and the store (rov_router.rpki.payload): the client session
feeds any PayloadTarget, the cache's session answers from any PayloadSource, the sans-IO side
loads without the store (no pytricia), and the VRP batch record is the Prefix PDU body."""

from __future__ import annotations

import subprocess
import sys

from rov_router.rpki.payload import (
    BATCH_REC_V4,
    BATCH_REC_V6,
    VRP,
    Changes,
    Update,
    UpdateError,
    VRPBatch,
)
from rov_router.rpki.store import VRPStore
from rov_router.rtr import pdu as P
from rov_router.rtr import session as S
from rov_router.rtr.cache import CacheState
from rov_router.rtr.cache_session import ServerSession
from rov_router.rtr.client import pump
from tests.support.env import REPO
from tests.support.pdu import split_pdus

A = VRP.parse("192.0.2.0/24", 24, 64496)
B = VRP.parse("2001:db8::/32", 48, 64497)


class ListTarget:
    """A PayloadTarget that only records: no trie, no VRPStore."""

    def __init__(self, refuse: UpdateError | None = None) -> None:
        self.updates: list[Update] = []
        self.flushed: list[str] = []
        self.refuse = refuse

    def apply(self, update: Update) -> Changes:
        if self.refuse is not None:
            raise self.refuse
        self.updates.append(update)
        return Changes(update.source, vrps_added=len(update.vrps))

    def flush(self, source: str) -> Changes:
        self.flushed.append(source)
        return Changes(source)


def _sync(target: ListTarget, cache: CacheState) -> S.ClientSession:
    client = S.ClientSession("c", max_version=2, clock=lambda: 1000.0)
    server = ServerSession(cache, "r", clock=lambda: 1000.0)
    client.connection_made()
    for _ in range(5):
        server.receive_data(client.data_to_send())
        data = b"".join(server.data_to_send())
        if not data:
            break
        pump(client, target, client.receive_data(data))
    return client


def test_the_client_session_feeds_any_payload_target():
    cache = CacheState(session_id=7)
    cache.set_data({A, B})
    target = ListTarget()
    client = _sync(target, cache)
    (u,) = target.updates
    assert u.source == "c" and u.reset and {ann for ann, _v in u.vrps} == {True}
    assert sorted(v for _ann, v in u.vrps) == sorted([A, B])
    assert client.state is S.State.ESTABLISHED


def test_a_refusing_target_gets_the_rtr_error_back_to_the_cache():
    cache = CacheState(session_id=7)
    cache.set_data({A})
    target = ListTarget(refuse=UpdateError(7, "duplicate announcement", A))
    client = _sync(target, cache)
    assert client.state is S.State.CLOSED and target.updates == []


class OneVRPSource:
    """A PayloadSource that is not the cache: one VRP, serial 41, session 9."""

    session_id = 9
    serial = 41
    has_data = True

    def full_payload(self, version: int) -> bytes:
        return P.PrefixPDU(version, True, A).encode()

    def delta_payload(self, version: int, from_serial: int) -> bytes | None:
        return None

    def oldest_serial(self) -> int:
        return 41

    def end_of_data(self, version: int) -> bytes:
        return P.EndOfData(version, 9, 41, 3600, 600, 7200).encode()


def test_the_cache_session_answers_from_any_payload_source():
    s = ServerSession(OneVRPSource(), "r")
    s.receive_data(P.ResetQuery(1).encode())
    got = split_pdus(b"".join(s.data_to_send()))
    assert [type(p).__name__ for p in got] == ["CacheResponse", "PrefixPDU", "EndOfData"]
    assert got[1].vrp == A and got[2].serial == 41
    s.receive_data(P.SerialQuery(1, 9, 3).encode())
    assert split_pdus(b"".join(s.data_to_send())) == [P.CacheReset(1)]


def test_a_batch_record_is_the_prefix_pdu_body():
    batch = VRPBatch([(True, A), (False, B)])
    v4 = P.PrefixPDU(2, True, A).encode()
    v6 = P.PrefixPDU(2, False, B).encode()
    assert bytes(batch.v4) == v4[8:] and bytes(batch.v6) == v6[8:]
    assert (BATCH_REC_V4.size, BATCH_REC_V6.size) == (len(v4) - 8, len(v6) - 8)
    f = P.Framer()
    f.feed(v4 + v6)
    taken = VRPBatch()
    assert f.take_prefixes(2, taken) == 2 and list(taken) == list(batch)


def test_the_store_is_a_payload_target():
    store = VRPStore()
    u = Update("s", reset=True, vrps=VRPBatch([(True, A)]))
    assert store.apply(u).vrps_added == 1 and store.flush("s").vrps_removed == 1


def test_the_sans_io_rtr_code_loads_without_the_store_or_pytricia():
    code = (
        "import sys\n"
        "import rov_router.rtr.session, rov_router.rtr.client, rov_router.rtr.cache_session\n"
        "import rov_router.rtr.pdu, rov_router.rtr.cache\n"
        "bad = [m for m in ('pytricia', 'rov_router.rpki.store') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"loaded by the sans-IO RTR code: {r.stdout.strip()}"
