"""The cache side without sockets: data model, deltas, PDU order, and our own client session
talking to a cache session in memory (both sans-IO)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from rov_router.rpki.slurm import load_slurm
from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP, ASPARecord, RouterKey, VRPFileError, load_vrp_file
from rov_router.rtr import pdu as P
from rov_router.rtr import session as S
from rov_router.rtr.cache import CacheState, new_session_id
from rov_router.rtr.cache_session import ServerSession
from rov_router.rtr.client import pump
from tests.support.env import DATA
from tests.support.pdu import split_pdus as pdus

REAL = DATA / "stayrtr_test.rpki.json"
SMALL = DATA / "small_vrps.json"


def real_data():
    d = load_vrp_file(REAL, ignore_expires=True)
    s = load_vrp_file(SMALL, ignore_expires=True)
    return d.vrps | s.vrps, s.aspas, d.router_keys


def converse(
    cache: CacheState,
    client: S.ClientSession,
    store: VRPStore,
    server: ServerSession | None = None,
    rounds: int = 10,
) -> ServerSession:
    """Shuttle bytes between a client session and a cache session until both are quiet."""
    server = server or ServerSession(cache, "test")
    for _ in range(rounds):
        to_cache = client.data_to_send()
        if to_cache:
            server.receive_data(to_cache)
        to_router = b"".join(server.data_to_send())
        if not to_cache and not to_router:
            break
        if to_router:
            pump(client, store, client.receive_data(to_router))
    return server


@pytest.mark.parametrize("version", [0, 1, 2])
def test_our_client_syncs_exactly_the_input_at_each_version(version):
    vrps, aspas, keys = real_data()
    assert keys and aspas and len(vrps) == 19 + 37 - 1  # 1.0.0.0/24-24 AS13335 is in both
    cache = CacheState(session_id=4242)
    cache.set_data(vrps, aspas, keys)
    store = VRPStore()
    client = S.ClientSession("c", min_version=version, max_version=version)
    pump(client, store, client.connection_made())
    converse(cache, client, store)
    assert client.version == version and client.serial == 0 and client.session_id == 4242
    assert set(store.iter_vrps()) == vrps
    assert store.router_keys() == (keys if version >= 1 else set())
    assert store.aspas() == (aspas if version == 2 else {})


def test_pdu_order_follows_8210bis_11_2():
    vrps, aspas, keys = real_data()
    cache = CacheState()
    cache.set_data(vrps, aspas, keys)
    out = pdus(cache.full_payload(2))
    types = [p.type for p in out]
    assert types == sorted(types)  # lower PDU type first
    v4 = [p.vrp for p in out if p.type == P.PDUType.IPV4_PREFIX]
    key = [(v.addr, v.maxlen, v.plen, v.asn) for v in v4]
    assert key == sorted(key, reverse=True)  # higher addr, mlen, plen, asn first
    # the AS0 VRP of 100.64.0.0/10 comes after the other announcements for that address
    aspa = [p.record.customer for p in out if p.type == P.PDUType.ASPA]
    assert aspa == sorted(aspa)
    assert not [p for p in pdus(cache.full_payload(1)) if p.type == P.PDUType.ASPA]
    assert not [p for p in pdus(cache.full_payload(0)) if p.type == P.PDUType.ROUTER_KEY]


def test_delta_ordering_announce_before_withdraw_and_as0():
    a = VRP.parse("192.0.2.0/24", 24, 64496)
    cache = CacheState()
    cache.set_data({a})
    as0 = VRP.parse("192.0.2.0/24", 24, 0)
    b = VRP.parse("192.0.2.0/24", 25, 64496)
    cache.set_data({b, as0})
    out = pdus(cache.delta_payload(2, 0))
    assert [(p.announce, p.vrp) for p in out] == [(True, b), (True, as0), (False, a)]


def test_net_delta_over_several_serials():
    a, b, c = (VRP.parse(f"10.{i}.0.0/16", 16, 1) for i in range(3))
    cache = CacheState()
    cache.set_data({a})  # serial 0
    cache.set_data({a, b})  # 1: +b
    cache.set_data({b})  # 2: -a
    cache.set_data({b, c, a})  # 3: +c +a
    cache.set_aspa(64500, [64501])  # 4
    cache.set_aspa(64500, [64502, 64501])  # 5: replace
    assert cache.serial == 5
    from0 = {
        (p.announce, getattr(p, "vrp", None) or p.record) for p in pdus(cache.delta_payload(2, 0))
    }
    assert from0 == {(True, b), (True, c), (True, ASPARecord(64500, (64501, 64502)))}
    from1 = {(p.announce, p.vrp) for p in pdus(cache.delta_payload(1, 1))}
    assert from1 == {(True, c)}  # a: withdrawn then announced again -> nothing
    assert cache.delta_payload(2, 5) == b""
    assert cache.delta_payload(2, 77) is None  # unknown serial -> Cache Reset


def test_history_is_bounded():
    cache = CacheState(history=3)
    cache.set_data(set())
    for i in range(6):
        cache.set_data({VRP.parse(f"10.{i}.0.0/16", 16, 1)})
    assert cache.serial == 6 and cache.oldest_serial() == 3
    assert cache.delta_payload(1, 2) is None and cache.delta_payload(1, 3) is not None


def test_unchanged_data_keeps_the_serial():
    cache = CacheState()
    cache.set_data({VRP.parse("10.0.0.0/8", 8, 1)})
    assert cache.set_data({VRP.parse("10.0.0.0/8", 8, 1)}) is None and cache.serial == 0


def test_incremental_update_reaches_the_client_by_serial_query():
    vrps, aspas, keys = real_data()
    cache = CacheState()
    cache.set_data(vrps, aspas, keys)
    store = VRPStore()
    client = S.ClientSession("c")
    pump(client, store, client.connection_made())
    server = converse(cache, client, store)
    gone = sorted(vrps)[:3]
    new = {VRP.parse("203.0.113.0/24", 24, 64999)}
    cache.set_data((vrps - set(gone)) | new, {**aspas, 65000: (65001,)}, keys)
    assert server.notify()
    pump(client, store, client.receive_data(b"".join(server.data_to_send())))  # the notify
    query = client.data_to_send()
    assert pdus(query) == [P.SerialQuery(2, cache.session_id, 0)]
    server.receive_data(query)
    pump(client, store, client.receive_data(b"".join(server.data_to_send())))
    assert set(store.iter_vrps()) == (vrps - set(gone)) | new
    assert store.aspas()[65000] == (65001,)
    assert client.serial == 1 and client.resets == 1 and client.updates == 2
    assert server.deltas_served == 1 and server.resets_served == 1


def test_serial_query_for_another_session_gets_cache_reset():
    cache = CacheState(session_id=1)
    cache.set_data({VRP.parse("10.0.0.0/8", 8, 1)})
    s = ServerSession(cache)
    s.receive_data(P.SerialQuery(1, 2, 0).encode())
    assert pdus(b"".join(s.data_to_send())) == [P.CacheReset(1)]


@pytest.mark.parametrize(
    "raw,code,reply_version",
    [
        (P.ResetQuery(2).encode().replace(b"\x02", b"\x03", 1), 4, 2),  # too new: Error 4 in v2
        (bytes([1, 77, 0, 0, 0, 0, 0, 8]), 5, 1),  # unknown PDU type
        (bytes([1, 2, 0, 0, 0, 1, 0, 0]), 0, None),  # impossible length 65536
        (P.CacheResponse(1, 5).encode(), 3, 1),  # a cache PDU sent by a router
        (bytes([1, 2, 0, 0, 0, 0, 0, 12]) + b"\0" * 4, 0, 1),  # Reset Query of length 12
    ],
)
def test_bad_router_input_gets_the_right_error(raw, code, reply_version):
    cache = CacheState()
    cache.set_data(set())
    s = ServerSession(cache, "bad")
    s.receive_data(raw)
    (err,) = pdus(b"".join(s.data_to_send()))
    assert isinstance(err, P.ErrorReport) and err.code == code and s.closed
    if reply_version is not None:
        assert err.version == reply_version


def test_version_change_after_negotiation_is_error_8_and_error_reports_get_no_reply():
    cache = CacheState()
    cache.set_data(set())
    s = ServerSession(cache)
    s.receive_data(P.ResetQuery(1).encode())
    s.data_to_send()
    s.receive_data(P.ResetQuery(2).encode())
    (err,) = pdus(b"".join(s.data_to_send()))
    assert err.code == 8 and s.closed
    s2 = ServerSession(cache)
    s2.receive_data(P.ErrorReport(1, 0, b"", "router unhappy").encode())
    assert s2.data_to_send() == [] and s2.closed


def test_no_data_yet_answers_error_2():
    s = ServerSession(CacheState())
    s.receive_data(P.ResetQuery(1).encode())
    (err,) = pdus(b"".join(s.data_to_send()))
    assert err.code == 2 and not s.closed


def test_session_id_differs_from_the_previous_run():
    assert all(new_session_id(avoid=7) != 7 for _ in range(2000))


# ---- SLURM (RFC 8416) ---------------------------------------------------------------------------

RFC8416_EXAMPLE = {  # RFC 8416 §3.5, with a real SKI / key for the BGPsec assertion
    "slurmVersion": 1,
    "validationOutputFilters": {
        "prefixFilters": [
            {"prefix": "192.0.2.0/24", "comment": "All VRPs encompassed by prefix"},
            {"asn": 64496, "comment": "All VRPs matching ASN"},
            {
                "prefix": "198.51.100.0/24",
                "asn": 64497,
                "comment": "All VRPs encompassed by prefix, matching ASN",
            },
        ],
        "bgpsecFilters": [
            {"asn": 64496, "comment": "All keys for ASN"},
            {"SKI": "XUJQ4tgdREjYop786R0p_wdeyeI", "comment": "Key matching Router SKI"},
            {"asn": 64497, "SKI": "YmFy", "comment": "Key for ASN 64497 matching Router SKI"},
        ],
    },
    "locallyAddedAssertions": {
        "prefixAssertions": [
            {"asn": 64496, "prefix": "198.51.100.0/24", "comment": "My other important route"},
            {
                "asn": 64496,
                "prefix": "2001:DB8::/32",
                "maxPrefixLength": 48,
                "comment": "My other important de-aggregated routes",
            },
        ],
        "bgpsecAssertions": [
            {
                "asn": 64496,
                "comment": "My known key for my important ASN",
                "SKI": "AAECAwQFBgcICQoLDA0ODxAREhM",
                "routerPublicKey": "MBMGByqGSM49AgEGCCqGSM49AwEHA0IABA",
            },
        ],
    },
}


def test_rfc8416_example_on_a_real_file(tmp_path):
    real = load_vrp_file(REAL, ignore_expires=True)
    doc = json.loads(REAL.read_text())
    extra = [  # what each filter should catch, and what it should leave
        ("192.0.2.0/24", 24, 65001),
        ("192.0.2.128/25", 25, 65002),  # prefix filter
        ("203.0.113.0/24", 24, 64496),  # ASN filter
        ("198.51.100.0/25", 25, 64497),  # prefix+ASN filter
        ("198.51.100.0/24", 24, 64498),  # same prefix, other ASN: stays
        ("192.0.0.0/16", 16, 65003),  # less specific than 192.0.2.0/24: stays
    ]
    doc["roas"] += [{"prefix": p, "maxLength": m, "asn": a} for p, m, a in extra]
    f = tmp_path / "vrps.json"
    f.write_text(json.dumps(doc))
    sl = tmp_path / "slurm.json"
    sl.write_text(json.dumps(RFC8416_EXAMPLE))
    data = load_slurm(sl).apply(load_vrp_file(f, ignore_expires=True))

    def caught(v: VRP) -> bool:  # RFC 8416 §3.3.1, written out for this example
        net = ipaddress.ip_network(v.prefix)
        in192 = net.version == 4 and net.subnet_of(ipaddress.ip_network("192.0.2.0/24"))
        in198 = net.version == 4 and net.subnet_of(ipaddress.ip_network("198.51.100.0/24"))
        return in192 or v.asn == 64496 or (in198 and v.asn == 64497)

    assert any(caught(v) for v in real.vrps)  # the real file has 192.0.2.0/24 AS1
    expect = {v for v in real.vrps if not caught(v)} | {
        VRP.parse("198.51.100.0/24", 24, 64498),
        VRP.parse("192.0.0.0/16", 16, 65003),
        VRP.parse("198.51.100.0/24", 24, 64496),  # assertion
        VRP.parse("2001:db8::/32", 48, 64496),  # assertion, maxPrefixLength 48
    }
    assert data.vrps == expect
    # of the 3 real keys, 5d4250e2... goes by its SKI and the AS64496 one by its ASN; the
    # asserted key is added
    by_ski = bytes.fromhex("5d4250e2d81d4448d8a29efce91d29ff075ec9e2")
    assert by_ski in {k.ski for k in real.router_keys}
    assert any(k.asn == 64496 for k in real.router_keys)
    kept = {k.ski for k in real.router_keys if k.ski != by_ski and k.asn != 64496}
    assert len(kept) == 1
    assert {k.ski for k in data.router_keys} == kept | {bytes(range(20))}
    assert RouterKey(bytes(range(20)), 64496, data_key_spki(data)) in data.router_keys


def data_key_spki(data) -> bytes:
    return next(k.spki for k in data.router_keys if k.ski == bytes(range(20)))


def test_slurm_aspa_and_errors(tmp_path):
    sl = tmp_path / "s.json"
    sl.write_text(
        json.dumps(
            {
                "slurmVersion": 1,
                "validationOutputFilters": {
                    "prefixFilters": [],
                    "bgpsecFilters": [],
                    "aspaFilters": [{"customer_asid": 64496}],
                },
                "locallyAddedAssertions": {
                    "prefixAssertions": [],
                    "bgpsecAssertions": [],
                    "aspaAssertions": [{"customer_asid": 64520, "provider_set": [64502, 64501]}],
                },
            }
        )
    )
    data = load_slurm(sl).apply(load_vrp_file(SMALL))
    assert 64496 not in data.aspas and data.aspas[64520] == (64501, 64502)
    sl.write_text(
        json.dumps(
            {
                "slurmVersion": 1,
                "validationOutputFilters": {"prefixFilters": [{"prefix": "10.0.0.0/33"}]},
                "locallyAddedAssertions": {},
            }
        )
    )
    with pytest.raises(VRPFileError, match=r"prefixFilters\[0\].*bad prefix length"):
        load_slurm(sl)
    sl.write_text(json.dumps({"slurmVersion": 2}))
    with pytest.raises(VRPFileError, match="slurmVersion"):
        load_slurm(sl)
    # a broken SKI names the entry and says what base64url is, not Python's "Incorrect padding"
    for ski, why in (("AAECA", "cannot encode whole bytes"), ("AA+/AA", "not base64url")):
        sl.write_text(
            json.dumps(
                {
                    "slurmVersion": 1,
                    "validationOutputFilters": {"bgpsecFilters": [{"SKI": ski}]},
                    "locallyAddedAssertions": {},
                }
            )
        )
        with pytest.raises(VRPFileError, match=r"bgpsecFilters\[0\].*" + why) as info:
            load_slurm(sl)
        assert "padding" not in str(info.value)


def test_aspa_replace_and_withdraw_reach_the_client_at_v2_only():
    for version in (1, 2):
        cache = CacheState()
        cache.set_data(set(), {64500: (64501,), 64510: (64511,)})
        store = VRPStore()
        client = S.ClientSession("c", max_version=version, min_version=version)
        pump(client, store, client.connection_made())
        server = converse(cache, client, store)
        cache.set_aspa(64500, [64502, 64503])  # replace
        cache.set_aspa(64510, None)  # withdraw
        server.notify()
        pump(client, store, client.receive_data(b"".join(server.data_to_send())))
        converse(cache, client, store, server)
        assert client.serial == 2
        assert store.aspas() == ({64500: (64502, 64503)} if version == 2 else {})
        out = pdus(cache.delta_payload(2, 0))
        assert [(p.announce, p.record) for p in out] == [
            (True, ASPARecord(64500, (64502, 64503))),
            (False, ASPARecord(64510, ())),
        ]


@pytest.mark.parametrize(
    "header",
    [b"\x05\x02\x00\x00\x00\x00\x00\x03", b"\x02\x02\x00\x00\x00\x02\x00\x00"],
)
def test_router_pdu_of_another_version_with_impossible_length_is_error_8(header):
    cache = CacheState()
    cache.set_data(set())
    s = ServerSession(cache)
    s.receive_data(P.ResetQuery(1).encode())
    s.data_to_send()
    s.receive_data(header)
    (err,) = pdus(b"".join(s.data_to_send()))
    assert err.code == 8 and err.version == 1 and s.closed


def test_serial_wraps_from_2_32_minus_1_to_0_and_the_delta_still_serves():
    cache = CacheState()
    cache.set_data(set())
    cache.serial = 0xFFFFFFFF
    v = VRP.parse("10.0.0.0/8", 8, 1)
    d = cache.set_data({v})
    assert (d.from_serial, d.to_serial, cache.serial) == (0xFFFFFFFF, 0, 0)
    assert [p.vrp for p in pdus(cache.delta_payload(2, 0xFFFFFFFF))] == [v]


# ---- the session's timers (sans-IO: a fake clock, no sleeps) ---------------------------------


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_half_sent_pdu_gets_corrupt_data_when_its_deadline_passes():
    clock = FakeClock()
    cache = CacheState()
    cache.set_data(set())
    s = ServerSession(cache, "half", clock=clock, partial_timeout=5.0)
    assert s.next_deadline() is None
    s.receive_data(P.ResetQuery(1).encode()[:5])
    assert s.next_deadline() == 1005.0
    assert s.tick(1004.9) == [] and not s.closed and s.data_to_send() == []
    (ev,) = s.tick(1005.0)
    assert ev.kind == "close" and "half-sent PDU timed out" in ev.message
    (err,) = pdus(b"".join(s.data_to_send()))
    assert err.code == P.ErrorCode.CORRUPT_DATA and "incomplete PDU (5 bytes) for 5 s" in err.text
    assert s.closed and s.next_deadline() is None and s.tick(2000.0) == []


def test_the_rest_of_a_half_pdu_stops_its_timer():
    clock = FakeClock()
    cache = CacheState()
    cache.set_data(set())
    s = ServerSession(cache, clock=clock, partial_timeout=5.0)
    raw = P.ResetQuery(1).encode()
    s.receive_data(raw[:3])
    clock.t += 4
    s.receive_data(raw[3:])
    assert s.next_deadline() is None and s.tick(clock.t + 100) == [] and not s.closed


def test_a_router_that_does_not_read_is_dropped_after_the_drain_timeout():
    clock = FakeClock()
    s = ServerSession(CacheState(), "slow", clock=clock, drain_timeout=30.0)
    s.write_blocked()
    clock.t += 10
    s.write_blocked()  # still blocked: the timer keeps its start
    assert s.next_deadline() == 1030.0 and s.tick(1029.0) == []
    s.write_drained()
    assert s.next_deadline() is None and s.tick(1031.0) == []
    s.write_blocked()  # blocked again at 1010
    (ev,) = s.tick(1041.0)
    assert (ev.kind, ev.level) == ("drop", "warning") and "nothing drained for 31 s" in ev.message
    assert s.closed and s.data_to_send() == []  # nothing more is written to it


def test_the_earlier_timer_sets_the_deadline():
    clock = FakeClock()
    cache = CacheState()
    cache.set_data(set())
    s = ServerSession(cache, clock=clock, drain_timeout=30.0, partial_timeout=5.0)
    s.write_blocked()
    s.receive_data(b"\x01")
    assert s.next_deadline() == 1005.0
