"""VRP store: atomic updates, per-source data, union validation, changed prefixes."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rov_router.rpki.store import Update, UpdateError, VRPStore
from rov_router.rpki.validate import make_checker, validate
from rov_router.rpki.vrp import VRP, ASPARecord, RouterKey, VRPBatch, parse_prefix


def V(p: str, ml: int, asn: int) -> VRP:
    return VRP.parse(p, ml, asn)


def upd(source: str, *items, reset: bool = False) -> Update:
    u = Update(source, reset)
    u.vrps = VRPBatch(items)
    return u


def state(store: VRPStore, prefix: str, origin: int) -> str:
    return str(validate(store, prefix, origin).state)


def test_duplicate_announcement_rejected_atomically():
    s = VRPStore()
    s.replace("a", [V("10.0.0.0/8", 16, 1)])
    before = set(s.iter_vrps())
    u = upd("a", (True, V("11.0.0.0/8", 8, 2)), (True, V("10.0.0.0/8", 16, 1)))
    with pytest.raises(UpdateError) as e:
        s.apply(u)
    assert e.value.code == 7 and e.value.record == V("10.0.0.0/8", 16, 1)
    assert set(s.iter_vrps()) == before  # 11/8 was not applied either
    assert state(s, "11.0.0.0/8", 2) == "not-found"


def test_unknown_withdrawal_rejected_atomically():
    s = VRPStore()
    s.replace("a", [V("10.0.0.0/8", 16, 1)])
    u = upd("a", (False, V("10.0.0.0/8", 16, 1)), (False, V("12.0.0.0/8", 8, 3)))
    with pytest.raises(UpdateError) as e:
        s.apply(u)
    assert e.value.code == 6
    assert state(s, "10.0.0.0/8", 1) == "valid"


def test_withdraw_then_announce_in_one_update_is_net_nothing():
    s = VRPStore()
    s.replace("a", [V("10.0.0.0/8", 16, 1)])
    ch = s.apply(upd("a", (False, V("10.0.0.0/8", 16, 1)), (True, V("10.0.0.0/8", 16, 1))))
    assert not ch.prefixes and state(s, "10.0.0.0/8", 1) == "valid"


def test_withdraw_in_reset_transfer_is_error_6():
    s = VRPStore()
    with pytest.raises(UpdateError) as e:
        s.apply(upd("a", (False, V("10.0.0.0/8", 16, 1)), reset=True))
    assert e.value.code == 6


def test_changed_prefixes_reported():
    s = VRPStore()
    ch = s.replace(
        "a", [V("10.0.0.0/8", 16, 1), V("10.1.0.0/16", 24, 2), V("2001:db8::/32", 48, 3)]
    )
    assert ch.prefix_strings() == ["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"]
    ch = s.apply(upd("a", (False, V("10.1.0.0/16", 24, 2)), (True, V("10.2.0.0/16", 16, 4))))
    assert ch.prefix_strings() == ["10.1.0.0/16", "10.2.0.0/16"]
    assert (ch.vrps_added, ch.vrps_removed) == (1, 1)


def test_covering_vrp_added_later_updates_more_specifics():
    s = VRPStore()
    s.replace("a", [V("10.1.0.0/16", 24, 2)])
    assert state(s, "10.1.1.0/24", 1) == "invalid"
    s.apply(upd("a", (True, V("10.0.0.0/8", 24, 1))))
    assert state(s, "10.1.1.0/24", 1) == "valid"
    s.apply(upd("a", (False, V("10.0.0.0/8", 24, 1))))
    assert state(s, "10.1.1.0/24", 1) == "invalid"
    s.apply(upd("a", (False, V("10.1.0.0/16", 24, 2))))
    assert state(s, "10.1.1.0/24", 1) == "not-found"


def test_union_of_sources_until_last_withdraws():
    s = VRPStore()
    v = V("192.0.2.0/24", 24, 64496)
    s.replace("a", [v])
    s.replace("b", [v, V("198.51.100.0/24", 24, 64497)])
    assert s.vrp_count() == 2
    assert s.counts("a")["vrps"] == 1 and s.counts("b")["vrps"] == 2
    s.apply(upd("a", (False, v)))
    assert state(s, "192.0.2.0/24", 64496) == "valid"  # b still has it
    s.flush("b")
    assert state(s, "192.0.2.0/24", 64496) == "not-found"
    assert s.vrp_count() == 0


def test_reset_replaces_a_sources_data_with_minimal_change():
    s = VRPStore()
    s.replace("a", [V("10.0.0.0/8", 8, 1), V("11.0.0.0/8", 8, 2)])
    ch = s.replace("a", [V("11.0.0.0/8", 8, 2), V("12.0.0.0/8", 8, 3)])
    assert ch.prefix_strings() == ["10.0.0.0/8", "12.0.0.0/8"]
    assert set(s.iter_vrps("a")) == {V("11.0.0.0/8", 8, 2), V("12.0.0.0/8", 8, 3)}


def test_aspa_announce_replaces_and_withdraw_removes():
    s = VRPStore()
    u = Update("a", True, aspas=[(True, ASPARecord(64500, (64501,)))])
    s.apply(u)
    ch = s.apply(Update("a", False, aspas=[(True, ASPARecord(64500, (64502, 64503)))]))
    assert ch.aspa_customers == {64500}
    assert s.aspa_providers(64500) == frozenset({64502, 64503})
    with pytest.raises(UpdateError) as e:
        s.apply(Update("a", False, aspas=[(False, ASPARecord(64999, ()))]))
    assert e.value.code == 6
    s.apply(Update("a", False, aspas=[(False, ASPARecord(64500, ()))]))
    assert s.aspa_providers(64500) is None


def test_aspa_union_across_sources_drops_as0_next_to_real_providers():
    s = VRPStore()
    s.apply(Update("a", True, aspas=[(True, ASPARecord(64500, (0,)))]))
    s.apply(Update("b", True, aspas=[(True, ASPARecord(64500, (64501,)))]))
    assert s.aspa_providers(64500) == frozenset({64501})
    s.flush("b")
    assert s.aspa_providers(64500) == frozenset({0})


def test_router_keys_duplicate_and_unknown():
    s = VRPStore()
    k = RouterKey(b"\x01" * 20, 64496, b"\x30\x01\x02")
    s.apply(Update("a", True, router_keys=[(True, k)]))
    with pytest.raises(UpdateError) as e:
        s.apply(Update("a", False, router_keys=[(True, k)]))
    assert e.value.code == 7
    with pytest.raises(UpdateError) as e:
        s.apply(Update("a", False, router_keys=[(False, RouterKey(b"\x02" * 20, 1, b"\x30"))]))
    assert e.value.code == 6
    assert s.router_keys() == {k}


def test_covering_and_covered_listing():
    s = VRPStore()
    s.replace("a", [V("10.0.0.0/8", 16, 1), V("10.1.0.0/16", 24, 2), V("10.1.2.0/24", 24, 3)])
    cov = [str(v) for v, _src in s.covering(*parse_prefix("10.1.2.0/24"))]
    assert cov == ["10.1.2.0/24-24 AS3", "10.1.0.0/16-24 AS2", "10.0.0.0/8-16 AS1"]
    assert [str(v) for v in s.covered(*parse_prefix("10.1.0.0/16"))] == [
        "10.1.0.0/16-24 AS2",
        "10.1.2.0/24-24 AS3",
    ]
    assert [str(v) for v in s.covered(*parse_prefix("10.0.0.0/7"))] == [
        "10.0.0.0/8-16 AS1",
        "10.1.0.0/16-24 AS2",
        "10.1.2.0/24-24 AS3",
    ]


# ---- property test: the store agrees with a naive RFC 6811 reference --------------------------


def naive(vrps: set[VRP], addr: bytes, plen: int, origin: int) -> str:
    net = ipaddress.ip_network((addr, plen))
    covered = False
    for v in vrps:
        if len(v.addr) != len(addr) or v.plen > plen:
            continue
        if net.subnet_of(ipaddress.ip_network((v.addr, v.plen))):
            covered = True
            if v.asn == origin and v.asn != 0 and plen <= v.maxlen:
                return "valid"
    return "invalid" if covered else "not-found"


@st.composite
def vrp4(draw):
    plen = draw(st.integers(4, 12))
    addr = draw(st.integers(0, 3)) << 28 | draw(st.integers(0, 255)) << 20
    addr &= ~((1 << (32 - plen)) - 1) & 0xFFFFFFFF
    ml = draw(st.integers(plen, 14))
    return VRP(addr.to_bytes(4, "big"), plen, ml, draw(st.sampled_from([0, 1, 2, 3])))


@settings(max_examples=60, deadline=None)
@given(
    first=st.sets(vrp4(), max_size=25),
    steps=st.lists(st.tuples(st.booleans(), vrp4()), max_size=25),
    routes=st.lists(st.tuples(vrp4(), st.integers(0, 3)), min_size=5, max_size=30),
)
def test_store_matches_naive_reference(first, steps, routes):
    s = VRPStore()
    s.replace("a", first)
    held = set(first)
    for announce, v in steps:
        if announce == (v in held):
            continue  # would be a protocol error; covered by the atomicity tests
        s.apply(upd("a", (announce, v)))
        if announce:
            held.add(v)
        else:
            held.discard(v)
        # a second source with a subset must not change the union's answers
    s.replace("b", list(held)[:3])
    check = make_checker(s)
    for r, origin in routes:
        plen = min(r.plen + 2, 16)
        addr = r.addr
        expect = naive(held, addr, plen, origin)
        assert str(check(addr, plen, origin)) == expect
        assert str(validate(s, str(ipaddress.ip_network((addr, plen))), origin).state) == expect
