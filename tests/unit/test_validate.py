"""RFC 6811 verdicts and their reasons."""

from __future__ import annotations

import pytest

from rov_router.bgp.route import origin_from_path
from rov_router.rpki.store import VRPStore
from rov_router.rpki.validate import make_checker, validate
from rov_router.rpki.vrp import VRP, load_vrp_file, parse_prefix
from tests.support.env import DATA


@pytest.fixture(scope="module")
def small() -> VRPStore:
    s = load_vrp_file(DATA / "small_vrps.json")
    st = VRPStore()
    st.replace("file", s.vrps, s.aspas)
    return st


def routes():
    for line in (DATA / "small_routes.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            p, o, expected = line.split()[:3]
            yield p, int(o), expected


@pytest.mark.parametrize("prefix,origin,expected", list(routes()))
def test_80_reference_routes(small, prefix, origin, expected):
    assert str(validate(small, prefix, origin).state) == expected
    assert str(make_checker(small)(*parse_prefix(prefix), origin)) == expected


def test_reason_wrong_origin(small):
    v = validate(small, "192.0.2.0/24", 64497)
    assert v.reason == "VRP 192.0.2.0/24-24 AS64496 covers it; origin AS64497 does not match"
    assert v.wrong_origin == (VRP.parse("192.0.2.0/24", 24, 64496),) and not v.too_long


def test_reason_too_long(small):
    v = validate(small, "203.0.113.0/27", 64498)
    assert v.too_long == (VRP.parse("203.0.113.0/24", 26, 64498),)
    assert "longer than maxLength 26" in v.reason


def test_reason_as0(small):
    v = validate(small, "100.64.1.0/24", 64496)
    assert str(v.state) == "invalid" and "AS0 VRP 100.64.0.0/10-32 AS0" in v.reason


def test_reason_valid_and_not_found(small):
    v = validate(small, "10.1.0.0/16", 64500)
    assert str(v.state) == "valid" and v.matched == (VRP.parse("10.0.0.0/8", 16, 64500),)
    assert "1 other covering VRP" in v.reason
    assert validate(small, "11.0.0.0/8", 65000).reason == "no VRP covers 11.0.0.0/8"


def test_as_set_origin_is_none(small):
    assert str(validate(small, "192.0.2.0/24", None).state) == "invalid"
    assert str(validate(small, "11.0.0.0/8", None).state) == "not-found"
    assert str(make_checker(small)(*parse_prefix("192.0.2.0/24"), None)) == "invalid"


def test_json_split(small):
    j = validate(small, "10.1.2.0/24", 64500).to_json()
    assert j["state"] == "invalid"
    assert [x["prefix"] for x in j["unmatched_length"]] == ["10.0.0.0/8"]
    assert [x["prefix"] for x in j["unmatched_as"]] == ["10.1.0.0/16"]


def test_origin_from_path():
    assert origin_from_path([("sequence", [3, 2, 1])]) == 1
    assert origin_from_path([("sequence", [3, 2]), ("set", [1, 5])]) is None
    assert origin_from_path([], local_as=65000) == 65000
    assert origin_from_path([("confed-sequence", [65001])], local_as=65000) == 65000
    assert origin_from_path([("set", [1, 2]), ("sequence", [7])]) == 7


def test_checker_reads_best_without_source_bits():
    """``best`` keeps no source bits (a second source's VRP must not read as a longer
    maxLength), and the AS0-only marker matches no origin, not even AS4294967295."""
    store = VRPStore()
    store.replace("a", [VRP.parse("10.0.0.0/8", 8, 0)])
    store.replace("b", [VRP.parse("192.0.2.0/24", 24, 64500), VRP.parse("10.1.0.0/16", 16, 0)])
    store.replace("c", [VRP.parse("198.51.100.0/24", 25, 64501)])
    check = make_checker(store, 4)
    cases = [
        ("192.0.2.0/24", 64500),
        ("192.0.2.0/25", 64500),
        ("192.0.2.0/24", 64501),
        ("198.51.100.0/25", 64501),
        ("198.51.100.0/26", 64501),
        ("10.1.2.0/24", 4294967295),
        ("10.2.0.0/16", 4294967295),
        ("10.2.0.0/16", None),
        ("203.0.113.0/24", 64500),
    ]
    got = [str(check(*parse_prefix(p), o)) for p, o in cases]
    assert got == [str(validate(store, p, o).state) for p, o in cases]
    assert got == [
        "valid", "invalid", "invalid", "valid", "invalid",
        "invalid", "invalid", "invalid", "not-found",
    ]  # fmt: skip
