"""The sans-IO RTR client session, driven with hand-built cache bytes and a fake clock.

Updates go through :func:`rov_router.rtr.client.pump` into a real :class:`VRPStore`, so the
store's duplicate (7) and unknown-withdraw (6) checks are part of what is tested.  Expected
behaviour follows RFC 8210 / 8210bis §4-9 and what StayRTR 0.5.1 was seen to send.
"""

from __future__ import annotations

import re

import pytest

from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP, ASPARecord, RouterKey
from rov_router.rtr import pdu as P
from rov_router.rtr import session as S
from rov_router.rtr.client import Applied, pump
from rov_router.rtr.pdu import (
    ASPAPDU,
    CacheReset,
    CacheResponse,
    EndOfData,
    ErrorReport,
    PrefixPDU,
    ResetQuery,
    RouterKeyPDU,
    SerialNotify,
    SerialQuery,
)
from rov_router.rtr.serial import Serial
from rov_router.rtr.session import (
    ClientSession,
    CloseConnection,
    ErrorReceived,
    ErrorSent,
    FlushRequired,
    Log,
    NotifyReceived,
    State,
    Synced,
    Timers,
    UpdateReady,
    VersionChanged,
)
from tests.support.pdu import split_pdus

SOURCE = "cache"
T0 = 1_000_000.0
SID = 0xAF56

A1 = VRP(bytes([192, 0, 2, 0]), 24, 24, 64496)
A2 = VRP(bytes.fromhex("20010db8") + bytes(12), 32, 48, 64497)
A3 = VRP(bytes([198, 51, 100, 0]), 22, 24, 64498)
A4 = VRP(bytes([203, 0, 113, 0]), 24, 24, 0)
KEY = RouterKey(bytes(range(20)), 64496, b"\x30\x13" + b"k" * 19)
ASPA1 = ASPARecord(64496, (64500, 64501))


# ---------------------------------------------------------------------------------------------
# harness
# ---------------------------------------------------------------------------------------------


def _bytes(items) -> bytes:
    return b"".join(i if isinstance(i, bytes | bytearray) else i.encode() for i in items)


class Harness:
    """One ClientSession feeding a VRPStore through ``pump``, with a fake clock."""

    def __init__(self, **kw) -> None:
        self.now = [T0]
        self.store = VRPStore()
        self.s = ClientSession(SOURCE, clock=lambda: self.now[0], **kw)
        self.events: list[S.Event] = []
        self.close: CloseConnection | None = None

    def _run(self, evs: list[S.Event]) -> list[S.Event]:
        out, close = pump(self.s, self.store, evs)
        self.events.extend(out)
        if close is not None:
            self.close = close
        return out

    def connect(self) -> list[S.Event]:
        self.close = None
        return self._run(self.s.connection_made())

    def lost(self) -> list[S.Event]:
        return self._run(self.s.connection_lost())

    def reconnect(self) -> list[P.PDU]:
        """Drop the transport, open a new one; return what the session sent."""
        self.lost()
        self.connect()
        return self.sent()

    def feed(self, *items) -> list[S.Event]:
        return self._run(self.s.receive_data(_bytes(items)))

    def feed_bytewise(self, *items) -> list[S.Event]:
        data = _bytes(items)
        out: list[S.Event] = []
        for i in range(len(data)):
            out += self._run(self.s.receive_data(data[i : i + 1]))
        return out

    def advance(self, seconds: float) -> list[S.Event]:
        self.now[0] += seconds
        return self._run(self.s.tick())

    def sent(self) -> list[P.PDU]:
        return split_pdus(self.s.data_to_send())

    def vrps(self) -> set[VRP]:
        return set(self.store.iter_vrps(SOURCE))

    def aspas(self) -> dict[int, tuple[int, ...]]:
        return self.store.aspas(SOURCE)

    def keys(self) -> set[RouterKey]:
        return self.store.router_keys(SOURCE)

    def snapshot(self):
        return (self.vrps(), self.aspas(), self.keys())


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def eod(version=2, sid=SID, serial=5, refresh=3600, retry=600, expire=7200):
    if version == 0:
        return EndOfData(0, sid, serial)
    return EndOfData(version, sid, serial, refresh, retry, expire)


def full_set(version=2, sid=SID, serial=5, vrps=(A1, A2), keys=(), aspas=(), **timers):
    items: list[P.PDU] = [CacheResponse(version, sid)]
    items += [PrefixPDU(version, True, v) for v in vrps]
    items += [RouterKeyPDU(version, True, k) for k in keys]
    items += [ASPAPDU(version, True, a) for a in aspas]
    items.append(eod(version, sid, serial, **timers))
    return items


def synced(
    version=2,
    vrps=(A1, A2),
    keys=(),
    aspas=(),
    serial=5,
    refresh=3600,
    retry=600,
    expire=7200,
    **harness_kw,
) -> Harness:
    """A harness whose session completed a first full sync (at ``T0``)."""
    h = Harness(max_version=harness_kw.pop("max_version", version), **harness_kw)
    h.connect()
    assert h.sent() == [ResetQuery(version)]
    h.feed(
        *full_set(
            version, SID, serial, vrps, keys, aspas, refresh=refresh, retry=retry, expire=expire
        )
    )
    assert of(h.events, Synced)
    assert h.s.state is State.ESTABLISHED
    h.events.clear()
    return h


def error_reports(pdus) -> list[ErrorReport]:
    return [p for p in pdus if isinstance(p, ErrorReport)]


# ---------------------------------------------------------------------------------------------
# start, full sync, incremental sync
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2])
def test_reset_query_on_start_at_max_version(version):
    h = Harness(max_version=version)
    h.connect()
    assert h.s.data_to_send() == bytes([version, 2, 0, 0, 0, 0, 0, 8])
    assert h.s.state is State.NEGOTIATING


def test_default_max_version_is_2():
    h = Harness()
    h.connect()
    assert h.sent() == [ResetQuery(2)]


def test_full_sync_applies_atomically_at_end_of_data():
    h = Harness()
    h.connect()
    h.sent()
    items = full_set(2, SID, 5, (A1, A2, A4), (KEY,), (ASPA1,), refresh=900)
    h.feed(*items[:-1])
    assert not of(h.events, UpdateReady)
    assert h.snapshot() == (set(), {}, set())  # nothing applied before End of Data
    h.feed(items[-1])
    kinds = [type(e) for e in h.events]
    assert kinds.index(UpdateReady) < kinds.index(Applied) < kinds.index(Synced)
    ready = of(h.events, UpdateReady)[0]
    assert (ready.serial, ready.session_id, ready.version) == (5, SID, 2)
    assert ready.update.reset
    (sync,) = of(h.events, Synced)
    assert sync == Synced(serial=5, session_id=SID, version=2, reset=True, records=5)
    assert h.vrps() == {A1, A2, A4}
    assert h.keys() == {KEY}
    assert h.aspas() == {64496: (64500, 64501)}
    assert h.sent() == []
    assert h.close is None
    assert h.s.state is State.ESTABLISHED
    assert (h.s.session_id, h.s.serial, h.s.version) == (SID, 5, 2)
    assert h.s.next_deadline() == T0 + 900


def test_full_sync_fed_one_byte_at_a_time():
    h = Harness()
    h.connect()
    h.sent()
    h.feed_bytewise(*full_set(2, SID, 5, (A1, A2, A3, A4), (KEY,), (ASPA1,)))
    assert len(of(h.events, Synced)) == 1
    assert h.vrps() == {A1, A2, A3, A4}
    assert h.keys() == {KEY}
    assert h.aspas() == {64496: (64500, 64501)}
    assert h.sent() == []


def test_serial_query_with_held_session_on_next_connection():
    h = synced()
    assert h.reconnect() == [SerialQuery(2, SID, 5)]
    h.feed(
        CacheResponse(2, SID),
        PrefixPDU(2, False, A1),
        PrefixPDU(2, True, A3),
        eod(serial=6),
    )
    (sync,) = of(h.events, Synced)
    assert (sync.serial, sync.reset, sync.records) == (6, False, 2)
    assert h.vrps() == {A2, A3}
    assert h.reconnect() == [SerialQuery(2, SID, 6)]


def test_empty_incremental_update():
    h = synced()
    h.reconnect()
    h.feed(CacheResponse(2, SID), eod(serial=5))
    assert of(h.events, Synced)[0].records == 0
    assert h.vrps() == {A1, A2}


def test_several_transfers_in_one_read():
    h = synced()
    h.reconnect()
    h.feed(
        CacheResponse(2, SID),
        PrefixPDU(2, True, A3),
        eod(serial=6),
        SerialNotify(2, SID, 7),
    )
    assert [e.serial for e in of(h.events, Synced)] == [6]
    assert h.sent() == [SerialQuery(2, SID, 6)]  # the notify was processed after the update
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A4), eod(serial=7))
    assert h.vrps() == {A1, A2, A3, A4}


# ---------------------------------------------------------------------------------------------
# Serial Notify
# ---------------------------------------------------------------------------------------------


def test_serial_notify_ignored_while_negotiating():
    h = Harness()
    h.connect()
    assert h.sent() == [ResetQuery(2)]
    # bis §5.2 / §7: ignore it whatever its version, even an unexpected one
    evs = h.feed(SerialNotify(2, SID, 3), SerialNotify(0, 1, 1), SerialNotify(1, 2, 2))
    evs += h.feed(b"\x03\x00\x00\x01\x00\x00\x00\x0c\x00\x00\x00\x09")  # version 3
    assert evs == []
    assert h.sent() == []
    assert h.s.state is State.NEGOTIATING
    assert h.s.version == 2
    h.feed(*full_set())
    assert of(h.events, Synced)[0].version == 2
    assert not of(h.events, VersionChanged)


def test_serial_notify_ignored_while_negotiating_a_resumed_session():
    h = synced()
    assert h.reconnect() == [SerialQuery(2, SID, 5)]
    assert h.feed(SerialNotify(2, SID, 9), SerialNotify(1, SID, 9)) == []
    assert h.sent() == []


def test_serial_notify_when_established_triggers_serial_query():
    h = synced()
    evs = h.feed(SerialNotify(2, SID, 6))
    assert NotifyReceived(6) in evs
    assert h.sent() == [SerialQuery(2, SID, 5)]
    assert h.s.state is State.WAITING
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A3), eod(serial=6))
    assert h.vrps() == {A1, A2, A3}


def test_serial_notify_for_the_held_serial_sends_nothing():
    h = synced()
    evs = h.feed(SerialNotify(2, SID, 5))
    assert NotifyReceived(5) in evs
    assert h.sent() == []
    assert h.s.state is State.ESTABLISHED


def test_serial_notify_during_transfer_queries_after_it():
    h = synced()
    h.feed(SerialNotify(2, SID, 6))
    assert h.sent() == [SerialQuery(2, SID, 5)]
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A3), SerialNotify(2, SID, 7))
    assert h.sent() == []
    h.feed(eod(serial=6))
    assert h.sent() == [SerialQuery(2, SID, 6)]


# ---------------------------------------------------------------------------------------------
# Cache Reset, session IDs
# ---------------------------------------------------------------------------------------------


def test_cache_reset_sends_reset_query_and_keeps_data_until_new_set():
    h = synced(keys=(KEY,), aspas=(ASPA1,))
    before = h.snapshot()
    assert h.reconnect() == [SerialQuery(2, SID, 5)]
    h.feed(CacheReset(2))
    assert h.sent() == [ResetQuery(2)]
    assert not of(h.events, FlushRequired)
    assert h.snapshot() == before
    h.feed(CacheResponse(2, 9), PrefixPDU(2, True, A3))
    assert h.snapshot() == before  # still the old data mid-transfer
    h.feed(eod(sid=9, serial=1))
    (sync,) = of(h.events, Synced)
    assert (sync.session_id, sync.serial, sync.reset) == (9, 1, True)
    assert h.snapshot() == ({A3}, {}, set())
    assert h.reconnect() == [SerialQuery(2, 9, 1)]


def test_cache_reset_after_refresh_query():
    h = synced()
    h.advance(3600)
    assert h.sent() == [SerialQuery(2, SID, 5)]
    h.feed(CacheReset(2))
    assert h.sent() == [ResetQuery(2)]
    assert h.vrps() == {A1, A2}
    h.feed(*full_set(sid=SID + 1, serial=1, vrps=(A1,)))
    assert h.vrps() == {A1}


def test_session_id_mismatch_after_serial_query():
    h = synced()
    assert h.reconnect() == [SerialQuery(2, SID, 5)]
    bad = CacheResponse(2, SID + 1)
    evs = h.feed(bad, PrefixPDU(2, True, A3), eod(sid=SID + 1, serial=6))
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.CORRUPT_DATA == 0
    assert err.pdu == bad.encode()
    assert ErrorSent in [type(e) for e in evs]
    assert of(evs, FlushRequired)
    assert h.close is not None
    assert h.snapshot() == (set(), {}, set())
    assert not of(evs, Synced)
    assert h.reconnect() == [ResetQuery(2)]


def test_end_of_data_session_mismatch_is_corrupt_data():
    h = synced()
    h.reconnect()
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A3), eod(sid=SID + 1, serial=6))
    (err,) = error_reports(h.sent())
    assert err.code == 0
    assert of(h.events, FlushRequired)
    assert h.vrps() == set()


def test_cache_response_after_reset_query_may_change_session():
    h = synced()
    h.feed(SerialNotify(2, SID, 6))
    h.sent()
    h.feed(CacheReset(2))
    assert h.sent() == [ResetQuery(2)]
    h.feed(*full_set(sid=1, serial=100, vrps=(A2,)))
    assert (h.s.session_id, h.s.serial) == (1, 100)
    assert h.vrps() == {A2}


# ---------------------------------------------------------------------------------------------
# store verdicts: duplicate (7), unknown withdraw (6)
# ---------------------------------------------------------------------------------------------


def test_duplicate_announcement_in_incremental_update():
    h = synced()
    h.reconnect()
    evs = h.feed(
        CacheResponse(2, SID), PrefixPDU(2, True, A3), PrefixPDU(2, True, A1), eod(serial=6)
    )
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.DUPLICATE_ANNOUNCEMENT == 7
    assert err.pdu == PrefixPDU(2, True, A1).encode()
    assert ErrorSent in [type(e) for e in evs]
    assert of(evs, FlushRequired)
    assert not of(evs, Synced)
    assert h.close is not None
    assert h.snapshot() == (set(), {}, set())
    assert h.reconnect() == [ResetQuery(2)]


def test_duplicate_announcement_in_reset_transfer():
    h = Harness()
    h.connect()
    h.sent()
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A2), PrefixPDU(2, True, A2), eod())
    (err,) = error_reports(h.sent())
    assert err.code == 7
    assert err.pdu == PrefixPDU(2, True, A2).encode()
    assert h.vrps() == set()
    assert not of(h.events, Synced)


def test_duplicate_router_key():
    h = synced(keys=(KEY,))
    h.reconnect()
    h.feed(CacheResponse(2, SID), RouterKeyPDU(2, True, KEY), eod(serial=6))
    (err,) = error_reports(h.sent())
    assert err.code == 7
    assert err.pdu == RouterKeyPDU(2, True, KEY).encode()
    assert h.snapshot() == (set(), {}, set())


def test_withdrawal_of_unknown_record():
    h = synced()
    h.reconnect()
    evs = h.feed(CacheResponse(2, SID), PrefixPDU(2, False, A3), eod(serial=6))
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.WITHDRAWAL_OF_UNKNOWN_RECORD == 6
    assert err.pdu == PrefixPDU(2, False, A3).encode()
    assert of(evs, FlushRequired)
    assert h.vrps() == set()
    assert h.close is not None


def test_withdrawal_of_unknown_aspa_and_router_key():
    for payload, expected in (
        (ASPAPDU(2, False, ASPARecord(65000, ())), ASPAPDU(2, False, ASPARecord(65000, ()))),
        (RouterKeyPDU(2, False, KEY), RouterKeyPDU(2, False, KEY)),
    ):
        h = synced(aspas=(ASPA1,))
        h.reconnect()
        h.feed(CacheResponse(2, SID), payload, eod(serial=6))
        (err,) = error_reports(h.sent())
        assert err.code == 6
        assert err.pdu == expected.encode()
        assert h.snapshot() == (set(), {}, set())


def test_withdraw_in_reset_transfer_is_an_error():
    h = Harness()
    h.connect()
    h.sent()
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A1), PrefixPDU(2, False, A2), eod())
    (err,) = error_reports(h.sent())
    assert err.code == 6
    assert h.vrps() == set()


# ---------------------------------------------------------------------------------------------
# transactions: connection lost mid-transfer
# ---------------------------------------------------------------------------------------------


def test_connection_lost_mid_transfer_leaves_store_unchanged():
    h = synced(keys=(KEY,), aspas=(ASPA1,))
    before = h.snapshot()
    h.reconnect()
    h.feed(
        CacheResponse(2, SID),
        PrefixPDU(2, False, A1),
        PrefixPDU(2, True, A3),
        RouterKeyPDU(2, False, KEY),
        ASPAPDU(2, True, ASPARecord(64496, (65000,))),
        ASPAPDU(2, True, ASPARecord(64499, (65001,))),
    )
    assert h.snapshot() == before
    evs = h.lost()
    assert any(isinstance(e, Log) and e.level == "warning" for e in evs)
    assert not of(evs, FlushRequired)
    assert h.snapshot() == before
    h.connect()
    assert h.sent() == [SerialQuery(2, SID, 5)]  # the held epoch is unchanged


def test_connection_lost_mid_first_transfer():
    h = Harness()
    h.connect()
    h.sent()
    items = full_set(vrps=(A1, A2, A3))
    h.feed(*items[:-1])
    h.lost()
    assert h.vrps() == set()
    h.connect()
    assert h.sent() == [ResetQuery(2)]
    h.feed(items[-1])  # a stray End of Data on the new connection does not complete anything
    assert not of(h.events, Synced)
    assert h.vrps() == set()


def test_connection_lost_mid_pdu():
    h = synced()
    h.reconnect()
    data = _bytes([CacheResponse(2, SID), PrefixPDU(2, True, A3), eod(serial=6)])
    h.feed(data[:-3])
    h.lost()
    h.connect()
    assert h.sent() == [SerialQuery(2, SID, 5)]
    # the partial PDU of the old connection must not prefix the new stream
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A4), eod(serial=6))
    assert h.vrps() == {A1, A2, A4}


# ---------------------------------------------------------------------------------------------
# version negotiation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offered", [1, 0])
def test_error_4_during_negotiation_downgrades(offered):
    h = Harness()
    h.connect()
    h.sent()
    # StayRTR answers in a low-version PDU with a NUL-terminated text (StayRTR 0.5.1)
    evs = h.feed(ErrorReport(offered, 4, ResetQuery(2).encode(), "Bad protocol version\x00"))
    assert [(e.old, e.new) for e in of(evs, VersionChanged)] == [(2, offered)]
    assert h.close is not None and h.close.reconnect_after == 0
    assert h.sent() == []  # never an Error Report in reply to an Error Report
    assert not of(evs, FlushRequired)
    assert h.reconnect() == [ResetQuery(offered)]
    h.feed(*full_set(version=offered))
    assert of(h.events, Synced)[-1].version == offered
    assert h.vrps() == {A1, A2}


def test_error_4_at_lowest_version_gives_up_on_this_connection():
    h = Harness(max_version=0)
    h.connect()
    h.sent()
    evs = h.feed(ErrorReport(0, 4, ResetQuery(0).encode(), "no"))
    assert not of(evs, VersionChanged)
    assert h.close is not None and h.close.reconnect_after > 0
    assert h.sent() == []


def test_lower_version_cache_response_downgrades():
    h = Harness()
    h.connect()
    h.sent()
    evs = h.feed(*full_set(version=1, serial=3))
    (vc,) = of(evs, VersionChanged)
    assert (vc.old, vc.new) == (2, 1)
    assert of(evs, Synced)[0].version == 1
    assert h.sent() == []
    assert h.vrps() == {A1, A2}
    assert h.reconnect() == [SerialQuery(1, SID, 3)]


def test_v0_cache_response_downgrades_to_v0():
    h = Harness(max_version=1)
    h.connect()
    h.sent()
    h.feed(*full_set(version=0, serial=3))
    assert [(e.old, e.new) for e in of(h.events, VersionChanged)] == [(1, 0)]
    assert h.vrps() == {A1, A2}
    assert h.reconnect() == [SerialQuery(0, SID, 3)]


def test_min_version_refuses_lower_cache_response():
    h = Harness(min_version=2)
    h.connect()
    h.sent()
    evs = h.feed(*full_set(version=1))
    assert not of(evs, VersionChanged)
    assert not of(evs, Synced)
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION
    assert h.close is not None
    assert h.s.version == 2
    assert h.vrps() == set()
    assert h.reconnect() == [ResetQuery(2)]


def test_min_version_refuses_downgrade_by_error_report():
    h = Harness(min_version=1)
    h.connect()
    h.sent()
    evs = h.feed(ErrorReport(0, 4, b"", "v0 only"))
    assert not of(evs, VersionChanged)
    assert h.close is not None and h.close.reconnect_after > 0
    assert h.sent() == []
    assert h.reconnect() == [ResetQuery(2)]


def test_min_version_refuses_downgrade_after_connection_drops():
    h = Harness(min_version=2)
    for _ in range(4):  # a v0 cache may just drop a query it does not understand
        h.connect()
        assert h.sent() == [ResetQuery(2)]
        h.lost()
    assert not of(h.events, VersionChanged)


def test_cache_answering_in_a_higher_version_is_refused():
    h = Harness(max_version=1)
    h.connect()
    h.sent()
    h.feed(*full_set(version=2))
    (err,) = error_reports(h.sent())
    assert err.code == 4
    assert err.version == 1
    assert not of(h.events, Synced)
    assert h.close is not None


def test_cache_answering_in_version_3_is_refused():
    h = Harness()
    h.connect()
    h.sent()
    h.feed(b"\x03\x03\x00\x01\x00\x00\x00\x08")
    (err,) = error_reports(h.sent())
    assert err.code == 4
    assert h.close is not None


def test_version_change_does_not_resume_the_old_versions_session():
    """bis §5.1: sessions of different protocol versions are separate sessions, so a session
    held at v2 cannot be continued with a v1 Serial Query; the data is kept until replaced."""
    h = synced(aspas=(ASPA1,))
    assert h.reconnect() == [SerialQuery(2, SID, 5)]
    h.feed(ErrorReport(1, 4, SerialQuery(2, SID, 5).encode(), "v1 only"))
    assert [(e.old, e.new) for e in of(h.events, VersionChanged)] == [(2, 1)]
    assert not of(h.events, FlushRequired)
    assert h.aspas() == {64496: (64500, 64501)}
    assert h.reconnect() == [ResetQuery(1)]
    h.feed(*full_set(version=1, sid=SID, serial=5, vrps=(A3,)))
    assert h.snapshot() == ({A3}, {}, set())  # v2-only ASPA data does not linger


def test_pdu_of_another_version_when_established():
    h = synced()
    bad = SerialNotify(1, SID, 6)
    evs = h.feed(bad)
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION == 8
    assert err.version == 2
    assert err.pdu == bad.encode()
    assert of(evs, FlushRequired)
    assert h.vrps() == set()
    assert h.close is not None


@pytest.mark.parametrize("first_sync", [True, False])
def test_prefix_of_another_version_mid_transfer(first_sync):
    if first_sync:
        h = Harness()
        h.connect()
        h.sent()
    else:
        h = synced()
        h.reconnect()
    bad = PrefixPDU(1, True, A3)
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A4), bad, eod(serial=6))
    (err,) = error_reports(h.sent())
    assert err.code == 8
    assert err.pdu == bad.encode()
    assert not of(h.events, Synced)
    assert h.vrps() == set()


@pytest.mark.parametrize(("session_version", "other"), [(1, 2), (1, 0), (0, 1), (0, 2)])
def test_prefix_of_another_version_mid_transfer_on_lower_version_session(session_version, other):
    h = synced(version=session_version)
    h.reconnect()
    bad = PrefixPDU(other, True, A3)
    h.feed(CacheResponse(session_version, SID), bad, eod(session_version, serial=6))
    (err,) = error_reports(h.sent())
    assert err.version == session_version
    assert err.code == (8 if session_version >= 1 else 0)
    assert err.pdu == bad.encode()
    assert not of(h.events, Synced)
    assert h.vrps() == set()


def test_other_version_on_v0_session_reports_a_v0_code():
    h = synced(version=0)
    h.feed(SerialNotify(1, SID, 6))
    (err,) = error_reports(h.sent())
    assert err.version == 0
    assert P.error_code_valid(err.code, 0)  # code 8 does not exist in RFC 6810
    assert h.vrps() == set()


def test_error_report_of_another_version_gets_no_reply():
    h = synced()
    evs = h.feed(ErrorReport(1, 2, b"", "x"))
    assert h.sent() == []
    assert of(evs, FlushRequired)
    assert h.close is not None


# ---------------------------------------------------------------------------------------------
# Error Reports from the cache
# ---------------------------------------------------------------------------------------------


def _to_query(h: Harness, how: str) -> None:
    if how == "reconnect":
        assert h.reconnect() == [SerialQuery(h.s.version, SID, 5)]
    else:
        h.advance(3600)
        assert h.sent() == [SerialQuery(h.s.version, SID, 5)]


@pytest.mark.parametrize("how", ["reconnect", "refresh"])
@pytest.mark.parametrize("code", [2, 12])
def test_non_fatal_error_keeps_data(how, code):
    h = synced(retry=123)
    _to_query(h, how)
    evs = h.feed(ErrorReport(2, code, b"", "later"))
    (rx,) = of(evs, ErrorReceived)
    assert (rx.code, rx.fatal) == (code, False)
    assert not of(evs, FlushRequired)
    assert h.vrps() == {A1, A2}
    assert h.sent() == []
    assert h.close is not None and h.close.reconnect_after == 123
    assert h.reconnect() == [SerialQuery(2, SID, 5)]


def test_no_data_available_before_first_sync():
    h = Harness()
    h.connect()
    h.sent()
    evs = h.feed(ErrorReport(2, 2, b"", "No data available"))
    assert of(evs, ErrorReceived)[0].fatal is False
    assert h.sent() == []
    assert h.close is not None and h.close.reconnect_after == S.DEFAULT_RETRY
    assert h.reconnect() == [ResetQuery(2)]


@pytest.mark.parametrize("how", ["reconnect", "refresh"])
@pytest.mark.parametrize("code", [0, 1, 3, 5, 13])
def test_fatal_error_flushes(how, code):
    h = synced(retry=123, keys=(KEY,), aspas=(ASPA1,))
    _to_query(h, how)
    evs = h.feed(ErrorReport(2, code, SerialQuery(2, SID, 5).encode(), "bye"))
    (rx,) = of(evs, ErrorReceived)
    assert (rx.code, rx.fatal) == (code, True)
    assert of(evs, FlushRequired)
    assert h.snapshot() == (set(), {}, set())
    assert h.sent() == []
    assert h.close is not None
    if code == P.ErrorCode.CACHE_SHUTDOWN:
        assert h.close.reconnect_after == S.DEFAULT_RETRY  # bis §8.6: default Retry
    assert h.reconnect() == [ResetQuery(2)]


def test_fatal_error_mid_transfer_discards_it():
    h = synced()
    h.reconnect()
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A3), ErrorReport(2, 1, b"", "oops"))
    assert h.vrps() == set()
    assert not of(h.events, Synced)
    assert h.sent() == []


@pytest.mark.parametrize(("version", "code"), [(1, 9), (1, 13), (0, 8), (2, 14), (2, 255)])
def test_error_code_undefined_for_version_is_an_invalid_report(version, code):
    h = synced(version=version)
    h.advance(3600)
    h.sent()
    evs = h.feed(ErrorReport(version, code, b"", "??"))
    assert of(evs, FlushRequired)
    assert h.vrps() == set()
    assert h.sent() == []  # no Error Report in reply to an Error Report
    assert h.close is not None
    assert not of(evs, Synced)


@pytest.mark.parametrize("negotiating", [True, False])
def test_malformed_error_report_gets_no_reply_and_flushes(negotiating):
    h = synced()
    if negotiating:
        h.reconnect()
    bad = ErrorReport(2, 2, b"abcd", "hi").encode()
    bad = bad[:8] + (100).to_bytes(4, "big") + bad[12:]  # encapsulated length overruns
    evs = h.feed(bad)
    assert h.sent() == []
    assert of(evs, FlushRequired)
    assert h.vrps() == set()
    assert h.close is not None


def test_never_error_report_in_reply_to_error_report_of_unknown_version():
    h = synced()
    h.feed(b"\x07\x0a\x00\x00\x00\x00\x00\x10" + bytes(8))
    assert h.sent() == []
    assert h.close is not None


# ---------------------------------------------------------------------------------------------
# other protocol errors the router detects
# ---------------------------------------------------------------------------------------------


def test_payload_outside_a_transfer_is_corrupt_data():
    h = synced()
    h.feed(PrefixPDU(2, True, A3))
    (err,) = error_reports(h.sent())
    assert err.code == 0
    assert h.vrps() == set()


@pytest.mark.parametrize("pdu", [ResetQuery(2), SerialQuery(2, SID, 1)])
def test_router_to_cache_pdus_are_invalid_requests(pdu):
    h = synced()
    h.feed(pdu)
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.INVALID_REQUEST
    assert err.pdu == pdu.encode()


def test_malformed_prefix_mid_transfer():
    h = synced()
    h.reconnect()
    bad = bytearray(PrefixPDU(2, True, A3).encode())
    bad[15] = 1  # host bit beyond /22
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A4), bytes(bad), eod(serial=6))
    (err,) = error_reports(h.sent())
    assert err.code == 0
    assert err.pdu == bytes(bad)
    assert h.vrps() == set()
    assert not of(h.events, Synced)


def test_impossible_length_is_corrupt_data():
    h = Harness()
    h.connect()
    h.sent()
    h.feed(b"\x02\x03\x00\x01\x00\x01\x00\x00")  # Cache Response claiming 65,536 octets
    (err,) = error_reports(h.sent())
    assert err.code == 0
    assert h.close is not None


def test_aspa_provider_list_error_reported_as_9():
    h = Harness()
    h.connect()
    h.sent()
    bad = ASPAPDU(2, True, ASPARecord(64496, (64501, 64500))).encode()
    h.feed(CacheResponse(2, SID), bad, eod())
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.ASPA_PROVIDER_LIST_ERROR == 9
    assert err.pdu == bad


# ---------------------------------------------------------------------------------------------
# ASPA: draft-10 layout, replace semantics
# ---------------------------------------------------------------------------------------------

STAYRTR = [
    bytes.fromhex(s.replace(" ", ""))
    for s in (
        "02 03 af 56 00 00 00 08",
        "02 0b 00 00 00 00 00 18 01 00 00 02 00 00 fb f0 00 00 fb f4 00 00 fb f5",
        "02 0b 00 00 00 00 00 14 01 00 00 01 00 00 fb f1 00 00 00 00",
        "02 0b 00 00 00 00 00 14 01 01 00 01 00 00 fb f0 00 00 fb f4",
        "02 0b 00 00 00 00 00 1c 01 01 00 03 00 00 fc 08 00 00 34 17 00 00 3b 41 00 00 fc 09",
        "02 07 af 56 00 00 00 18 00 00 00 00 00 00 0e 10 00 00 02 58 00 00 1c 20",
    )
]
# StayRTR sends all prefix PDUs before the ASPA PDUs (StayRTR 0.5.1)
STAYRTR_STREAM = [STAYRTR[0], PrefixPDU(2, True, A1), PrefixPDU(2, True, A2), *STAYRTR[1:]]


def test_draft10_aspa_falls_back_to_v1():
    h = Harness()
    h.connect()
    h.sent()
    evs = h.feed(*STAYRTR_STREAM)
    assert [(e.old, e.new) for e in of(evs, VersionChanged)] == [(2, 1)]
    msgs = [e.message for e in of(evs, Log)] + [e.reason for e in of(evs, VersionChanged)]
    assert any(re.search(r"draft-(8210bis-)?10\b", m) for m in msgs), msgs
    assert h.close is not None and h.close.reconnect_after == 0
    assert not of(evs, Synced)
    assert h.snapshot() == (set(), {}, set())
    assert h.reconnect() == [ResetQuery(1)]
    h.feed(*full_set(version=1, sid=SID, serial=0))
    assert h.vrps() == {A1, A2}
    # it stays at v1 on later connections
    assert h.reconnect() == [SerialQuery(1, SID, 0)]


def test_draft10_aspa_with_min_version_2_is_fatal():
    h = Harness(min_version=2)
    h.connect()
    h.sent()
    evs = h.feed(*STAYRTR_STREAM)
    assert not of(evs, VersionChanged)
    (err,) = error_reports(h.sent())
    assert err.pdu == STAYRTR[1]
    assert h.close is not None
    assert h.vrps() == set()


def test_draft10_aspa_parsed_in_compat_mode():
    h = Harness(aspa_compat="draft10")
    h.connect()
    h.sent()
    h.feed(*STAYRTR_STREAM)
    (sync,) = of(h.events, Synced)
    assert (sync.version, sync.session_id, sync.serial) == (2, 44886, 0)
    assert h.sent() == []
    assert not of(h.events, VersionChanged)
    assert h.vrps() == {A1, A2}
    # AS64496's IPv4 and IPv6 lists merged into one record
    assert h.aspas() == {
        64496: (64500, 64501),
        64497: (0,),
        64520: (13335, 15169, 64521),
    }


def _draft10(customer, afi, providers, flags=1) -> bytes:
    n = len(providers)
    body = bytes([flags, afi]) + n.to_bytes(2, "big") + customer.to_bytes(4, "big")
    body += b"".join(p.to_bytes(4, "big") for p in providers)
    return bytes([2, 11, 0, 0]) + (8 + len(body)).to_bytes(4, "big") + body


def test_draft10_compat_merges_per_afi_lists():
    h = Harness(aspa_compat="draft10")
    h.connect()
    h.sent()
    h.feed(
        CacheResponse(2, 1),
        _draft10(64496, 0, [64500]),
        _draft10(64496, 1, [64502, 64501]),
        _draft10(64497, 0, [0]),
        _draft10(64497, 1, [64510]),  # AS0 on one AFI, a real provider on the other
        eod(sid=1, serial=1),
    )
    assert h.sent() == []
    assert h.aspas() == {64496: (64500, 64501, 64502), 64497: (64510,)}


def test_aspa_announce_replaces_existing_record():
    h = synced(aspas=(ASPA1, ASPARecord(64497, (0,))))
    h.reconnect()
    h.feed(
        CacheResponse(2, SID),
        ASPAPDU(2, True, ASPARecord(64496, (64502,))),
        ASPAPDU(2, False, ASPARecord(64497, ())),
        eod(serial=6),
    )
    assert h.sent() == []
    assert of(h.events, Synced)
    assert h.aspas() == {64496: (64502,)}
    assert h.vrps() == {A1, A2}


# ---------------------------------------------------------------------------------------------
# timers
# ---------------------------------------------------------------------------------------------


def test_refresh_timer_sends_serial_query():
    h = synced(refresh=900, retry=60, expire=7200)
    assert h.s.timers == Timers(900, 60, 7200)
    assert h.s.next_deadline() == T0 + 900
    h.advance(899)
    assert h.sent() == []
    h.advance(1)
    assert h.sent() == [SerialQuery(2, SID, 5)]
    assert h.s.state is State.WAITING
    h.advance(10)
    h.feed(CacheResponse(2, SID), eod(serial=6, refresh=900))
    assert h.s.next_deadline() == T0 + 910 + 900


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ((0, 0, 0), (1, 1, 600)),
        ((86401, 7201, 172801), (86400, 7200, 172800)),
        ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (86400, 7200, 172800)),
        ((1, 1, 599), (1, 1, 600)),
    ],
)
def test_out_of_range_timers_are_clamped_with_a_warning(given, expected):
    refresh, retry, expire = given
    h = Harness()
    h.connect()
    h.sent()
    evs = h.feed(*full_set(refresh=refresh, retry=retry, expire=expire))
    assert h.s.timers == Timers(*expected)
    warned = [e.message for e in of(evs, Log) if e.level == "warning"]
    for name, g, x in zip(("refresh", "retry", "expire"), given, expected, strict=True):
        if g != x:
            assert any(name in m and str(g) in m for m in warned), (name, warned)
    assert len(warned) == sum(g != x for g, x in zip(given, expected, strict=True))


def test_in_range_timers_give_no_warning():
    h = Harness()
    h.connect()
    h.sent()
    evs = h.feed(*full_set(refresh=1, retry=7200, expire=172800))
    assert h.s.timers == Timers(1, 7200, 172800)
    assert not [e for e in of(evs, Log) if e.level == "warning"]


def test_expire_flushes_while_disconnected_then_reset_query():
    h = synced(refresh=3600, retry=600, expire=7200)
    h.lost()
    assert h.s.next_deadline() == T0 + 7200
    assert not of(h.advance(7199), FlushRequired)
    assert h.vrps() == {A1, A2}
    evs = h.advance(1)
    assert of(evs, FlushRequired)
    assert h.snapshot() == (set(), {}, set())
    h.connect()
    assert h.sent() == [ResetQuery(2)]


def test_expire_counts_from_last_successful_update():
    h = synced(refresh=3600, retry=600, expire=7200)
    h.advance(3600)
    h.sent()
    h.feed(CacheResponse(2, SID), eod(serial=5))  # a successful (empty) update at T0+3600
    h.lost()
    assert h.s.next_deadline() == T0 + 3600 + 7200
    assert not of(h.advance(7199), FlushRequired)
    assert of(h.advance(1), FlushRequired)


def test_expire_while_connected_unanswered_queries():
    h = synced(refresh=3600, retry=600, expire=7200, transfer_timeout=300)
    h.advance(3600)
    assert h.sent() == [SerialQuery(2, SID, 5)]
    h.advance(300)
    assert h.close is not None  # transfer timeout
    h.lost()
    evs = h.advance(7200 - 3900)
    assert of(evs, FlushRequired)
    h.connect()
    assert h.sent() == [ResetQuery(2)]


def test_expire_while_established_does_not_stop_polling():
    """A cache may (wrongly) send Expire < Refresh.  After the data expires the session must
    still poll, and with a Reset Query since nothing is held any more."""
    h = synced(refresh=7200, retry=600, expire=600)
    evs = h.advance(600)
    assert of(evs, FlushRequired)
    assert h.vrps() == set()
    sent = h.sent()
    if not sent:
        deadline = h.s.next_deadline()
        assert deadline is not None, "the session stopped polling after expiry"
        h.advance(deadline - h.now[0])
        sent = h.sent()
    assert sent == [ResetQuery(2)]


@pytest.mark.parametrize("max_version", [0, 2])
def test_v0_end_of_data_keeps_default_timers(max_version):
    h = Harness(max_version=max_version)
    h.connect()
    h.sent()
    h.feed(*full_set(version=0))
    assert h.s.timers == Timers(3600, 600, 7200)
    assert h.s.next_deadline() == T0 + 3600
    h.advance(3600)
    assert h.sent() == [SerialQuery(0, SID, 5)]


def test_keep_timers_ignores_cache_values():
    h = Harness(timers=Timers(100, 10, 1000), keep_timers=True)
    h.connect()
    h.sent()
    h.feed(*full_set(refresh=5000, retry=5, expire=9000))
    assert h.s.timers == Timers(100, 10, 1000)
    assert h.s.next_deadline() == T0 + 100


@pytest.mark.parametrize("stage", ["before-response", "mid-transfer"])
def test_transfer_timeout_closes_connection(stage):
    h = Harness(transfer_timeout=30)
    h.connect()
    h.sent()
    assert h.s.next_deadline() == T0 + 30
    if stage == "mid-transfer":
        h.feed(*full_set()[:-1])
    h.advance(29)
    assert h.close is None
    evs = h.advance(1)
    (close,) = of(evs, CloseConnection)
    assert close.reconnect_after == S.DEFAULT_RETRY
    h.feed(eod())  # late End of Data after the timeout changes nothing
    assert h.vrps() == set()
    assert not of(h.events, Synced)


def test_transfer_timeout_on_incremental_keeps_data():
    h = synced(transfer_timeout=30)
    h.reconnect()
    h.feed(CacheResponse(2, SID), PrefixPDU(2, False, A1))
    evs = h.advance(30)
    assert of(evs, CloseConnection)
    assert not of(evs, FlushRequired)
    h.lost()
    assert h.vrps() == {A1, A2}


def test_status_info():
    h = synced(refresh=900)
    info = h.s.info()
    assert (info.state, info.version, info.session_id, info.serial) == ("established", 2, SID, 5)
    assert info.refresh_in == 900
    assert info.updates == 1 and info.resets == 1


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        ClientSession(max_version=3)
    with pytest.raises(ValueError):
        ClientSession(min_version=2, max_version=1)
    with pytest.raises(ValueError):
        ClientSession(aspa_compat="draft13")


def test_update_done_without_pending_update():
    s = ClientSession()
    with pytest.raises(RuntimeError):
        s.update_done()


# ---------------------------------------------------------------------------------------------
# RFC 1982 serial arithmetic
# ---------------------------------------------------------------------------------------------


def serial_lt(a: int, b: int) -> bool:
    return Serial(a) < Serial(b)


def serial_add(a: int, n: int) -> int:
    return (Serial(a) + n).value


def test_serial_lt_basic_and_wraparound():
    assert serial_lt(0, 1)
    assert not serial_lt(1, 0)
    assert serial_lt(0xFFFFFFFF, 0)
    assert not serial_lt(0, 0xFFFFFFFF)
    assert serial_lt(0xFFFFFFF0, 5)
    assert not serial_lt(5, 5)
    assert serial_lt(0, 0x7FFFFFFF)
    assert not serial_lt(0x7FFFFFFF, 0)
    assert serial_lt(0x80000001, 0)  # 0 - 0x80000001 wraps to 2^31 - 1 ahead


@pytest.mark.parametrize("a", [0, 1, 12345, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
def test_serial_lt_undefined_at_half_range(a):
    b = (a + 0x80000000) & 0xFFFFFFFF
    assert not serial_lt(a, b)
    assert not serial_lt(b, a)


def test_serial_type_orders_and_adds_by_rfc1982():
    assert Serial(0xFFFFFFFF) < Serial(0) and Serial(0) > Serial(0xFFFFFFFF)
    assert Serial(5) <= Serial(5) and Serial(5) >= Serial(5) and not Serial(5) < Serial(5)
    half = Serial(0x80000000)
    assert not (Serial(0) < half) and not (Serial(0) > half) and Serial(0) != half
    assert Serial(0xFFFFFFFF) + 1 == Serial(0) and int(Serial(0xFFFFFFFF) + 2) == 1
    assert Serial(2**32 + 7) == Serial(7)  # stored modulo 2^32
    for bad in (-1, 0x80000000):
        with pytest.raises(ValueError, match="RFC 1982"):
            Serial(0) + bad


def test_serial_add_bounds():
    assert serial_add(0xFFFFFFFF, 1) == 0
    assert serial_add(5, 0) == 5
    assert serial_add(0xFFFFFFFF, 0x7FFFFFFF) == 0x7FFFFFFE
    assert serial_lt(0xFFFFFFFF, serial_add(0xFFFFFFFF, 0x7FFFFFFF))
    with pytest.raises(ValueError):
        serial_add(0, 0x80000000)
    with pytest.raises(ValueError):
        serial_add(0, -1)


def test_serial_query_after_serial_wraps():
    h = synced(serial=0xFFFFFFFF)
    assert h.reconnect() == [SerialQuery(2, SID, 0xFFFFFFFF)]
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A3), eod(serial=0))
    assert h.reconnect() == [SerialQuery(2, SID, 0)]


def test_pump_standalone_store():
    """pump() with a store shared by two sessions keeps each cache's data apart."""
    store = VRPStore()
    now = [T0]
    a = ClientSession("a", clock=lambda: now[0])
    b = ClientSession("b", clock=lambda: now[0])
    for s, vrps in ((a, (A1,)), (b, (A1, A3))):
        pump(s, store, s.connection_made())
        s.data_to_send()
        pump(s, store, s.receive_data(_bytes(full_set(vrps=vrps))))
    _, close = pump(a, store, a.receive_data(ErrorReport(2, 13, b"", "shutdown").encode()))
    assert close is not None
    assert set(store.iter_vrps("a")) == set()
    assert set(store.iter_vrps("b")) == {A1, A3}


def test_serial_notify_for_the_serial_being_received_adds_no_query():
    h = synced()
    h.feed(SerialNotify(2, SID, 6))
    assert h.sent() == [SerialQuery(2, SID, 5)]
    h.feed(CacheResponse(2, SID), PrefixPDU(2, True, A3), SerialNotify(2, SID, 6))
    h.feed(eod(serial=6))
    assert h.sent() == []  # the notify announced exactly what End of Data delivered


def test_lower_version_reply_to_a_serial_query_starts_a_new_session():
    h = synced(version=2, aspas=(ASPA1,))
    assert h.reconnect() == [SerialQuery(2, SID, 5)]
    evs = h.feed(CacheResponse(1, SID), PrefixPDU(1, True, A3), eod(version=1, serial=6))
    (vc,) = of(evs, VersionChanged)
    assert (vc.old, vc.new) == (2, 1)
    assert h.close is not None and h.close.reconnect_after == 0
    assert not of(evs, Synced)  # the v1 delta is not applied on top of v2 data
    assert h.vrps() == {A1, A2} and h.aspas() == {ASPA1.customer: ASPA1.providers}
    assert h.reconnect() == [ResetQuery(1)]
    h.feed(*full_set(version=1, serial=9, vrps=(A3,)))
    assert h.vrps() == {A3} and h.aspas() == {}  # the v1 full set replaced the v2 session


def test_error_4_during_negotiation_is_not_reported_fatal():
    h = Harness()
    h.connect()
    h.sent()
    evs = h.feed(ErrorReport(1, 4, b"", "version 1 only"))
    (er,) = of(evs, ErrorReceived)
    assert er.code == 4 and not er.fatal
    assert not of(evs, FlushRequired)


@pytest.mark.parametrize(
    "held,notified,queries",
    [(5, 6, True), (5, 4, False), (0xFFFFFFFF, 0, True), (0, 0xFFFFFFFF, False), (5, 5, False)],
)
def test_serial_notify_compared_by_rfc1982(held, notified, queries):
    h = synced(serial=held)
    h.feed(SerialNotify(2, SID, notified))
    assert h.sent() == ([SerialQuery(2, SID, held)] if queries else [])


# ---- memory bounds under a hostile cache ---------------------------------------------------------


def test_error_reports_keep_only_the_last_few_texts_and_count_the_rest():
    sess = ClientSession(SOURCE, max_version=1, clock=lambda: T0)
    text = "x" * 5000
    for i in range(2000):
        sess.connection_made()
        sess.data_to_send()
        sess.receive_data(
            ErrorReport(1, P.ErrorCode.NO_DATA_AVAILABLE, b"", f"{i} {text}").encode()
        )
        sess.connection_lost()
    assert len(sess.errors) <= 16
    assert sess.errors_total == 2000
    assert sess.errors[-1].startswith(f"{SOURCE}: cache reports No Data Available (2): 1999 xxx")
    assert all(len(e) <= 1010 for e in sess.errors)  # texts cut, not kept whole
    assert sess.info().errors == list(sess.errors)[-5:]


def test_endless_cache_response_is_abandoned_past_max_records_table_unchanged():
    sess = ClientSession(SOURCE, max_version=1, clock=lambda: T0, max_records=1000)
    store = VRPStore()
    pump(sess, store, sess.connection_made())
    sess.data_to_send()
    good = CacheResponse(1, SID).encode() + PrefixPDU(1, True, A1).encode()
    pump(sess, store, sess.receive_data(good + EndOfData(1, SID, 1, 3600, 600, 7200).encode()))
    assert set(store.iter_vrps()) == {A1} and sess.state is State.ESTABLISHED
    pump(sess, store, sess.receive_data(SerialNotify(1, SID, 2).encode()))
    sess.data_to_send()
    flood = b"".join(
        P.encode_prefix(1, True, VRP((i << 8).to_bytes(4, "big"), 24, 24, 1)) for i in range(1, 400)
    )
    events: list = []
    events += pump(sess, store, sess.receive_data(CacheResponse(1, SID).encode()))[0]
    for _ in range(5):  # 1,995 records in chunks: past 1,000 the transfer is given up
        evs, close = pump(sess, store, sess.receive_data(flood))
        events += evs
        if close is not None:
            break
    assert close is not None and "transfer abandoned" in close.reason
    (err,) = [e for e in events if isinstance(e, Log) and e.level == "error"]
    assert "more than 1000 records in one Cache Response" in err.message
    assert "table unchanged" in err.message
    assert set(store.iter_vrps()) == {A1}  # kept
    assert not any(isinstance(e, FlushRequired) for e in events)
    assert sess._pending is None and sess.state is State.CLOSED


@pytest.mark.parametrize(
    "header",
    [
        b"\x05\x04\x00\x00\x00\x00\x00\x03",  # version 5, length 3: was Error 4
        b"\x02\x04\x00\x00\x00\x00\x00\x03",  # version 2 on a v1 session, length 3: was Error 0
        b"\x00\x03\x00\x01\x00\x01\x00\x00",  # version 0, length 65,536
    ],
)
def test_other_version_with_impossible_length_on_an_established_session_is_error_8(header):
    """8210bis §7: once the version is settled, a PDU of another version is Unexpected
    Protocol Version (8), judged before its length (as OpenBGPD's rtr_parse_header does)."""
    h = synced(version=1)
    h.feed(header)
    (err,) = error_reports(h.sent())
    assert err.code == P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION == 8 and err.version == 1
    assert h.close is not None and h.vrps() == set()  # fatal: flushed


def test_same_version_with_impossible_length_is_still_corrupt_data():
    h = synced(version=1)
    h.feed(b"\x01\x04\x00\x00\x00\x00\x00\x03")
    (err,) = error_reports(h.sent())
    assert err.code == 0
