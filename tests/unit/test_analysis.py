"""rov-router analyze: report categories and reasons, covering-route search against a brute-force
scan, what-if against a full recomputation, ROA audit classes, readers and outputs."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rov_router.analysis.audit import (
    DISALLOWING,
    REDUNDANT,
    SEEN,
    TOO_PERMISSIVE,
    UNSEEN,
    audit,
    minimal_roas,
)
from rov_router.analysis.output import to_csv, to_html, to_json
from rov_router.analysis.report import (
    CAT_AS,
    CAT_BOTH,
    CAT_LENGTH,
    DEFAULT_ROUTE,
    LESS_SPECIFIC,
    SAME_PREFIX,
    analyze,
    brute_force_cover,
)
from rov_router.analysis.table import Table, TableError, read_table
from rov_router.analysis.whatif import (
    Change,
    WhatIfError,
    parse_aspa_set,
    parse_roa,
    slurm_change,
    what_if,
)
from rov_router.rpki.slurm import load_slurm
from rov_router.rpki.store import VRPStore
from rov_router.rpki.validate import INVALID, validate_route
from rov_router.rpki.vrp import VRP, parse_prefix
from tests.support.env import DATA, REPO, run_cli

YOUTUBE_MRT = REPO / "topologies" / "data" / "youtube-pakistan-2008-as3277.mrt.gz"


def store_of(*roas: str, aspas: dict | None = None) -> VRPStore:
    s = VRPStore()
    s.replace("test", {parse_roa(r) for r in roas}, aspas or {})
    return s


def category_from_verdict(v) -> str:
    """The NIST category from validate_route's own split (an independent derivation)."""
    if v.too_long:
        return CAT_LENGTH
    plen = int(v.prefix.rsplit("/", 1)[1])
    return CAT_AS if any(x.maxlen >= plen for x in v.wrong_origin) else CAT_BOTH


# ---- report ---------------------------------------------------------------------------------


def test_categories_reasons_and_covers_by_hand():
    store = store_of("10.0.0.0/16-24 AS1", "10.1.0.0/16 AS2", "192.0.2.0/24 AS0")
    routes = [
        ("10.0.1.0/24", 1, "valid", None, None),
        ("10.0.1.0/25", 1, "invalid", CAT_LENGTH, (LESS_SPECIFIC, "10.0.1.0/24")),
        ("10.0.1.0/24", 9, "invalid", CAT_AS, (SAME_PREFIX, "10.0.1.0/24")),
        ("10.0.1.0/25", 9, "invalid", CAT_BOTH, (LESS_SPECIFIC, "10.0.1.0/24")),
        ("10.1.0.0/16", 1, "invalid", CAT_AS, None),
        ("10.1.1.0/24", 2, "invalid", CAT_LENGTH, None),
        ("192.0.2.0/24", 5, "invalid", CAT_AS, None),
        ("198.51.100.0/24", 5, "not-found", None, None),
        ("10.0.2.0/24", None, "invalid", CAT_AS, None),
        ("10.0.2.0/23", 7, "invalid", CAT_AS, None),
    ]
    table = Table.from_routes([(p, o) for p, o, *_ in routes])
    rep = analyze(store, table)
    assert rep.counts() == {"valid": 1, "invalid": 8, "not-found": 1}
    for i, (p, o, state, cat, cover) in enumerate(routes):
        assert str(rep.states[i]) == state, p
        assert rep.categories.get(i) == cat, (p, o)
        ref = validate_route(store, *parse_prefix(p), o)
        assert rep.verdict(i) == ref  # same VRP split, so the same reason text
        if state == "invalid":
            got = rep.cover[i]
            assert (got[0], table.prefix(got[1])) == cover if cover else got is None, (p, o)
    assert rep.category_counts() == {CAT_AS: 5, CAT_LENGTH: 2, CAT_BOTH: 1}
    top = rep.top_origins(2)
    assert top[0]["origin"] in (1, 9) and top[0]["invalid"] == 2
    assert rep.top_vrps(1)[0]["vrp"] == "10.0.0.0/16-24 AS1"
    # 10.0.1.0/25 x2, 10.0.1.0/24 AS9, 10.0.2.0/24 NONE, 10.0.2.0/23 AS7
    assert rep.top_vrps(1)[0]["invalids"] == 5


def test_default_route_cover_is_named():
    store = store_of("10.0.0.0/16 AS1")
    table = Table.from_routes([("0.0.0.0/0", 5), ("10.0.1.0/24", 1), ("10.0.0.0/16", 2)])
    rep = analyze(store, table)
    assert rep.cover[1] == (DEFAULT_ROUTE, 0) and rep.cover[2] == (DEFAULT_ROUTE, 0)
    assert rep.cover_counts() == {SAME_PREFIX: 0, LESS_SPECIFIC: 0, DEFAULT_ROUTE: 2, "none": 0}
    res = what_if(store, rep, Change(add={parse_roa("0.0.0.0/0 AS7")}))
    assert {(c.index, c.after, c.cover_after) for c in res.routes} == {(0, CAT_AS, None)}


# small random worlds: prefixes inside 10.0.0.0/16, lengths 16..20, a few ASNs
def _pfx(draw_int: int, plen: int) -> str:
    base = (10 << 24) | (draw_int << 8)
    base &= ((1 << plen) - 1) << (32 - plen)
    return f"{base >> 24 & 255}.{base >> 16 & 255}.{base >> 8 & 255}.{base & 255}/{plen}"


prefixes = st.builds(_pfx, st.integers(0, 255), st.integers(16, 20))
vrps_st = st.lists(
    st.tuples(prefixes, st.integers(0, 4), st.integers(0, 3)), min_size=0, max_size=12
)
routes_st = st.lists(
    st.tuples(st.one_of(prefixes, st.just("0.0.0.0/0")), st.one_of(st.none(), st.integers(0, 3))),
    min_size=1,
    max_size=40,
)


def _vrp_set(items) -> set[VRP]:
    out = set()
    for p, extra, asn in items:
        a, plen = parse_prefix(p)
        out.add(VRP(a, plen, min(plen + extra, 32), asn))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vrps_st, routes_st)
def test_report_matches_validate_route_and_brute_force_cover(vrps, routes):
    store = VRPStore()
    store.replace("t", _vrp_set(vrps))
    table = Table.from_routes(routes)
    rep = analyze(store, table)
    for i, (p, o) in enumerate(routes):
        v = validate_route(store, *parse_prefix(p), o)
        assert rep.states[i] == v.state
        if v.state is INVALID:
            assert rep.categories[i] == category_from_verdict(v)
            assert rep.verdict(i).reason == v.reason
            assert rep.cover[i] == brute_force_cover(table, rep.states, i)


def _labels(rep) -> list[str]:
    return [rep.categories.get(i) or str(s) for i, s in enumerate(rep.states)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vrps_st, routes_st, vrps_st, st.randoms(use_true_random=False))
def test_what_if_equals_full_recomputation(vrps, routes, adds, rnd):
    base = _vrp_set(vrps)
    store = VRPStore()
    store.replace("t", base)
    table = Table.from_routes(routes)
    rep = analyze(store, table)
    removes = {v for v in sorted(base) if rnd.random() < 0.4}
    change = Change(add=_vrp_set(adds), remove=removes)
    res = what_if(store, rep, change)
    # the store is left exactly as it was
    assert set(store.iter_vrps()) == base
    # full recomputation with the modified set
    store2 = VRPStore()
    store2.replace("t", (base - removes) | (change.add - removes))
    rep2 = analyze(store2, table)
    before, after = _labels(rep), _labels(rep2)
    expected = {i: (before[i], after[i]) for i in range(len(table)) if before[i] != after[i]}
    got = {c.index: (c.before, c.after) for c in res.routes}
    assert got == expected
    for c in res.routes:
        assert c.after_verdict == rep2.verdict(c.index)
        assert c.before_verdict == rep.verdict(c.index)
        if c.after_verdict.state is INVALID:
            assert c.cover_after == rep2.cover[c.index]


def test_what_if_revalidates_only_covered_routes_and_rejects_unknown_removal():
    store = store_of("10.0.0.0/16 AS1")
    table = Table.from_routes(
        [("10.0.0.0/16", 1), ("10.0.1.0/24", 1), ("10.1.0.0/16", 2), ("192.0.2.0/24", 3)]
    )
    rep = analyze(store, table)
    res = what_if(store, rep, Change(add={parse_roa("10.0.0.0/16-24 AS1")}))
    assert res.revalidated == 2  # the /16 and the /24 inside 10.0.0.0/16, nothing else
    assert [(table.prefix(c.index), c.before, c.after) for c in res.routes] == [
        ("10.0.1.0/24", CAT_LENGTH, "valid")
    ]
    with pytest.raises(WhatIfError, match=r"10\.9\.0\.0/16-16 AS1.*not in the VRP set"):
        what_if(store, rep, Change(remove={parse_roa("10.9.0.0/16 AS1")}))
    assert set(store.iter_vrps()) == {parse_roa("10.0.0.0/16 AS1")}


def test_parse_roa_and_aspa_set_errors_name_the_argument():
    assert parse_roa("192.0.2.0/24-25 AS64496") == VRP.parse("192.0.2.0/24", 25, 64496)
    assert parse_roa("192.0.2.0/24 64496").maxlen == 24
    for bad in ("192.0.2.0/24-23 AS1", "192.0.2.1/24 AS1", "192.0.2.0/24", "x AS1"):
        with pytest.raises(WhatIfError, match="ROA"):
            parse_roa(bad)
    assert parse_aspa_set("64496:64497,64498") == (64496, (64497, 64498))
    assert parse_aspa_set("64496:0") == (64496, (0,))
    assert parse_aspa_set("64496:none") == (64496, None)
    with pytest.raises(WhatIfError, match="--aspa-set"):
        parse_aspa_set("64496")


def test_slurm_what_if(tmp_path):
    store = store_of("10.0.0.0/16 AS1", "10.0.0.0/24 AS2", "10.1.0.0/16 AS1")
    slurm = tmp_path / "s.json"
    slurm.write_text(
        json.dumps(
            {
                "slurmVersion": 1,
                "validationOutputFilters": {
                    "prefixFilters": [{"prefix": "10.0.0.0/16", "asn": 2}],
                    "bgpsecFilters": [],
                },
                "locallyAddedAssertions": {
                    "prefixAssertions": [
                        {"prefix": "10.0.0.0/16", "maxPrefixLength": 24, "asn": 1}
                    ],
                    "bgpsecAssertions": [],
                },
            }
        )
    )
    ch = slurm_change(store, load_slurm(slurm))
    assert ch.remove == {parse_roa("10.0.0.0/24 AS2")}
    assert ch.add == {parse_roa("10.0.0.0/16-24 AS1")}
    table = Table.from_routes([("10.0.0.0/24", 2), ("10.0.0.0/24", 1)])
    rep = analyze(store, table)
    res = what_if(store, rep, ch)
    assert {(c.index, c.before, c.after) for c in res.routes} == {
        (0, "valid", CAT_AS),
        (1, CAT_LENGTH, "valid"),
    }


# ---- audit ----------------------------------------------------------------------------------


def test_audit_classes_by_hand():
    store = store_of(
        "10.0.0.0/16 AS1",  # SEEN
        "10.0.0.0/16-17 AS1",  # SEEN, TOO PERMISSIVE (10.0.128.0/17 never announced)
        "10.0.1.0/24 AS1",  # UNSEEN; REDUNDANT? no: /16-17 does not reach /24
        "10.0.0.0/17 AS1",  # SEEN, REDUNDANT (the /16-17 allows it)
        "10.2.0.0/16 AS1",  # UNSEEN
        "10.3.0.0/16 AS1",  # SEEN, DISALLOWING (makes 10.3.1.0/24 AS1 invalid)
        "10.0.0.0/16 AS2",  # another holder's
    )
    table = Table.from_routes(
        [("10.0.0.0/16", 1), ("10.0.0.0/17", 1), ("10.3.0.0/16", 1), ("10.3.1.0/24", 1)]
    )
    rep = analyze(store, table)
    res = audit(store, rep, {1})
    got = {str(r.vrp): r.labels for r in res.roas}
    assert got == {
        "10.0.0.0/16-16 AS1": [SEEN, REDUNDANT],
        "10.0.0.0/16-17 AS1": [SEEN, TOO_PERMISSIVE],
        "10.0.0.0/17-17 AS1": [SEEN, REDUNDANT],
        "10.0.1.0/24-24 AS1": [UNSEEN],
        "10.2.0.0/16-16 AS1": [UNSEEN],
        "10.3.0.0/16-16 AS1": [SEEN, DISALLOWING],
    }
    tp = next(r for r in res.roas if str(r.vrp) == "10.0.0.0/16-17 AS1")
    assert tp.unseen_more_specifics == 1 and tp.unseen_example == "10.0.128.0/17"
    # the suggestion makes every holder route valid and allows nothing unseen
    assert [str(v) for v in res.suggestions] == [
        "10.0.0.0/16-16 AS1",
        "10.3.0.0/16-16 AS1",
        "10.0.0.0/17-17 AS1",
        "10.3.1.0/24-24 AS1",
    ]
    s2 = VRPStore()
    s2.replace("s", set(res.suggestions))
    assert all(str(s) == "valid" for s in analyze(s2, table).states)
    # --prefix scope: every VRP inside, the other origin's route is foreign
    res = audit(store, rep, set(), [parse_prefix("10.0.0.0/16")])
    assert {str(r.vrp) for r in res.roas} >= {"10.0.0.0/16-16 AS2", "10.0.1.0/24-24 AS1"}


def test_minimal_roas_uses_max_length_only_for_complete_subtrees():
    seen = {parse_prefix(p) for p in ("10.0.0.0/23", "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24")}
    assert [str(v) for v in minimal_roas(seen, 5)] == ["10.0.0.0/23-24 AS5", "10.0.2.0/24-24 AS5"]
    seen6 = {parse_prefix("2001:db8::/32"), parse_prefix("2001:db8::/33")}
    assert [str(v) for v in minimal_roas(seen6, 5)] == [
        "2001:db8::/32-32 AS5",
        "2001:db8::/33-33 AS5",
    ]


@pytest.mark.parametrize("maxlen", [22, 25])
def test_youtube_2008_audit(maxlen):
    """YouTube's 208.65.152.0/22 with maxLength 22 disallows its own /24 and /25s that fought
    the hijack; maxLength 25 allows them but also 11 more-specifics nobody announced (a
    forged-origin hijack could use them).  Pakistan Telecom's /24 is invalid either way."""
    table = read_table(DATA / "youtube-2008-routes.txt")
    store = store_of(f"208.65.152.0/22-{maxlen} AS36561")
    rep = analyze(store, table)
    hijack = next(i for i in range(len(table)) if table.origins[i] == 17557)
    assert rep.states[hijack] is INVALID
    assert rep.categories[hijack] == (CAT_BOTH if maxlen == 22 else CAT_AS)
    res = audit(store, rep, {36561}, [parse_prefix("208.65.152.0/22")])
    (roa,) = res.roas
    if maxlen == 22:
        assert roa.labels == [SEEN, DISALLOWING]
        assert sorted(table.prefix(i) for i in roa.disallows) == [
            "208.65.153.0/24",
            "208.65.153.0/25",
            "208.65.153.128/25",
        ]
    else:
        assert roa.labels == [SEEN, TOO_PERMISSIVE]
        assert roa.unseen_more_specifics == 15 - 4
        assert roa.unseen_example == "208.65.152.0/23"
    assert [table.prefix(i) for i in res.foreign] == ["208.65.153.0/24"]
    assert [str(v) for v in res.suggestions] == [
        "208.65.152.0/22-22 AS36561",
        "208.65.153.0/24-25 AS36561",
    ]


# ---- tables, ASPA, outputs, CLI --------------------------------------------------------------


def test_read_text_pfx2as_moas_as_set_and_errors(tmp_path):
    f = tmp_path / "t.pfx2as"
    f.write_text("192.0.2.0\t24\t64496_64497\n198.51.100.0\t24\t64496,64497\n10.0.0.0/8 AS5\n")
    t = read_table(f)
    assert [(t.prefix(i), t.origins[i]) for i in range(len(t))] == [
        ("192.0.2.0/24", 64496),
        ("192.0.2.0/24", 64497),
        ("198.51.100.0/24", None),
        ("10.0.0.0/8", 5),
    ]
    f.write_text("192.0.2.0\t24\t1\n192.0.2.1\t24\t2\n")
    with pytest.raises(TableError, match=r"t.pfx2as: line 2: bad prefix 192.0.2.1/24"):
        read_table(f)
    f.write_text("192.0.2.0/24 ASX\n")
    with pytest.raises(TableError, match="line 1"):
        read_table(f)


def test_mrt_table_aspa_and_aspa_what_if():
    t = read_table(YOUTUBE_MRT)
    assert t.kind == "mrt" and len(t) == 3  # the peer's table after its 5 UPDATEs
    assert {t.prefix(i): t.origins[i] for i in range(3)} == {
        "208.65.153.0/24": 36561,
        "208.65.153.0/25": 36561,
        "208.65.153.128/25": 36561,
    }
    # 25462 attests only 3267 as provider: the hop 25462 -> 3267 is fine upstream, but
    # 36561 -> 25462 with 36561 attesting 3549 only is a leak
    store = store_of("208.65.152.0/22-25 AS36561", aspas={36561: (3549,), 25462: (3267,)})
    rep = analyze(store, t)
    counts = rep.aspa.counts()
    assert counts["from customer / peer (upstream)"] == {"invalid": 3}
    res = what_if(store, rep, Change(aspa={36561: (3549, 25462)}))
    assert res.aspa_revalidated == 3
    # all three routes have the path 3277 3267 25462 36561: upstream, 36561 -> 25462 is now
    # attested and 3267 -> 3277 unattested (unknown); downstream, the unattested hop at the
    # top is allowed, so the path is valid
    assert (
        sorted((a.assumption, a.before, a.after) for a in res.aspa)
        == [("from customer / peer (upstream)", "invalid", "unknown")] * 3
        + [("from provider (downstream)", "unknown", "valid")] * 3
    )
    assert store.aspa_providers(36561) == frozenset({3549})  # unchanged


def test_outputs_json_csv_html():
    store = store_of("208.65.152.0/22 AS36561")
    table = read_table(DATA / "youtube-2008-routes.txt")
    rep = analyze(store, table)
    w = what_if(store, rep, Change(add={parse_roa("208.65.152.0/22-25 AS36561")}))
    a = audit(store, rep, {36561})
    doc = to_json(rep, w, a)
    json.dumps(doc)
    assert doc["states"] == {"valid": 1, "invalid": 4, "not-found": 0}
    assert doc["what_if"]["transitions"] == {
        "invalid-length -> valid": 3,
        "invalid-as-length -> invalid-as": 1,
    }
    assert doc["audit"]["suggested_roas"][1]["roa"] == "208.65.153.0/24-25 AS36561"
    rows = to_csv(rep, None, None).splitlines()
    assert rows[0].startswith("prefix,origin,peer,category,cover")
    assert len(rows) == 5
    page = to_html(rep, w, a)
    assert "<svg" in page and "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_cli_analyze(tmp_path):
    vrps = tmp_path / "v.json"
    vrps.write_text(
        json.dumps({"roas": [{"prefix": "208.65.152.0/22", "maxLength": 22, "asn": 36561}]})
    )
    html = tmp_path / "r.html"
    r = run_cli(
        "analyze", str(DATA / "youtube-2008-routes.txt"), "--vrps", str(vrps), "--json",
        "--add-roa", "208.65.152.0/22-25 AS36561", "--remove-roa", "208.65.152.0/22 AS36561",
        "--asn", "36561", "--html", str(html),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["invalid_categories"] == {
        "invalid-as": 0,
        "invalid-length": 3,
        "invalid-as-length": 1,
    }
    assert len(doc["what_if"]["routes"]) == 4
    assert [x["classes"] for x in doc["audit"]["roas"]] == [["SEEN", "DISALLOWING"]]
    assert html.read_text().startswith("<!DOCTYPE html>")
    r = run_cli("analyze", str(DATA / "youtube-2008-routes.txt"), "--vrps", str(vrps))
    assert r.returncode == 0 and "invalid-length" in r.stdout, r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.txt"], "nope.txt: cannot read"),
        (["BAD"], "bad.txt: line 2: prefix '10.0.0.1/8' has bits set beyond /8"),
        (["GOOD", "--add-roa", "10.0.0.0/8-7 AS1"], "ROA '10.0.0.0/8-7 AS1': maxLength 7"),
        (["GOOD", "--remove-roa", "10.0.0.0/8 AS1"], "cannot remove ROA 10.0.0.0/8-8 AS1"),
        (["GOOD", "--prefix", "10.0.0.1/8"], "audit: prefix '10.0.0.1/8' has bits set"),
        ([], "give a table FILE or --router"),
    ],
)
def test_cli_errors_are_clear(tmp_path, args, message):
    vrps = tmp_path / "v.json"
    vrps.write_text(json.dumps({"roas": [{"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 1}]}))
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8 1\n10.0.0.1/8 2\n")
    good = tmp_path / "good.txt"
    good.write_text("10.0.0.0/8 1\n")
    args = [str(bad) if a == "BAD" else str(good) if a == "GOOD" else a for a in args]
    r = run_cli("analyze", *args, "--vrps", str(vrps))
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_random_large_table_cover_sample():
    """A denser random table (2,000 routes): every invalid's cover equals the brute force."""
    rnd = random.Random(15)
    routes = []
    for _ in range(2000):
        plen = rnd.randint(12, 24)
        a = (10 << 24 | rnd.getrandbits(16) << 8) & (((1 << plen) - 1) << (32 - plen))
        routes.append(
            (f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{plen}", rnd.randint(1, 5))
        )
    vrps = set()
    for p, o in rnd.sample(routes, 300):
        a, plen = parse_prefix(p)
        vrps.add(VRP(a, plen, min(32, plen + rnd.randint(0, 3)), o if rnd.random() < 0.7 else 9))
    store = VRPStore()
    store.replace("t", vrps)
    table = Table.from_routes(routes)
    rep = analyze(store, table)
    assert len(rep.invalid) > 100
    for i in rep.invalid:
        assert rep.cover[i] == brute_force_cover(table, rep.states, i)


def test_terminal_text_keeps_bracketed_data():
    """Data such as the ASPA assumption label in brackets is printed as it is, not taken as
    rich markup (which would silently swallow it)."""
    from rich.console import Console

    from rov_router.analysis.output import print_text

    t = read_table(YOUTUBE_MRT)
    store = store_of("208.65.152.0/22 AS36561", aspas={36561: (3549,)})
    rep = analyze(store, t)
    w = what_if(store, rep, Change(aspa={36561: (3549, 25462)}))
    con = Console(record=True, width=200)
    print_text(rep, w, audit(store, rep, {36561}), console=con)
    text = con.export_text()
    assert "[from customer / peer (upstream)] invalid -> unknown" in text
    assert "set ASPA AS36561 -> AS3549, AS25462" in text
    assert "SEEN" not in text.split("ROA audit")[0]
    assert "208.65.152.0/22-22 AS36561" in text and "UNSEEN, DISALLOWING" in text
