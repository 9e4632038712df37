"""rov-router analyze on the real data: a 1,000-ROA what-if on the full CAIDA table equals a
full recomputation with the modified VRP set, and an audit of real holders whose suggested
ROAs make every one of their routes valid."""

from __future__ import annotations

import random

import pytest

from rov_router.analysis.audit import SEEN, audit
from rov_router.analysis.report import analyze, no_gc
from rov_router.analysis.table import read_table
from rov_router.analysis.whatif import Change, what_if
from rov_router.rpki.store import VRPStore
from rov_router.rpki.validate import INVALID, VALID, make_checker
from rov_router.rpki.vrp import VRP, load_vrp_file
from tests.support.env import need_shared

pytestmark = pytest.mark.largedata


@pytest.fixture(scope="module")
def world():
    vf = need_shared("vrps/rpki-client_ripe-prepdev_20230504.json.xz")
    tf = need_shared("routes/caida_routeviews-rv2-20240406.pfx2as.gz")
    with no_gc():
        vs = load_vrp_file(vf, ignore_expires=True)
        store = VRPStore()
        store.replace("f", vs.vrps, vs.aspas)
    table = read_table(tf)
    return vs.vrps, store, table, analyze(store, table)


def labels(rep) -> list[str]:
    return [rep.categories.get(i) or str(s) for i, s in enumerate(rep.states)]


def test_what_if_of_1000_roas_equals_full_recomputation(world):
    vrps, store, table, rep = world
    rnd = random.Random(2008)
    adds: set[VRP] = set()
    for i in rnd.sample(range(len(table)), 3000):
        o = table.origins[i]
        if o is not None and rep.states[i] is not VALID and len(adds) < 500:
            p = table.plens[i]
            adds.add(VRP(table.addrs[i], p, min(32, p + rnd.randint(0, 2)), o))
    covering = sorted({v for i in rnd.sample(rep.invalid, 3000) for v in rep.verdict(i).covering})
    removes = set(rnd.sample(covering, 500))
    res = what_if(store, rep, Change(add=adds, remove=removes))
    assert store.vrp_count() == len(vrps)  # put back as it was
    store2 = VRPStore()
    with no_gc():
        store2.replace("f", (vrps - removes) | adds)
    rep2 = analyze(store2, table)
    before, after = labels(rep), labels(rep2)
    expected = {i: (before[i], after[i]) for i in range(len(table)) if before[i] != after[i]}
    got = {c.index: (c.before, c.after) for c in res.routes}
    assert len(expected) > 1000
    assert got == expected
    for c in res.routes:
        if c.after_verdict.state is INVALID:
            assert c.cover_after == rep2.cover[c.index]
            assert c.after_verdict == rep2.verdict(c.index)


@pytest.mark.parametrize("asn", [47331, 39891, 5384, 9198])
def test_audit_of_real_holders(world, asn):
    """The holders behind most invalids: every SEEN ROA authorizes a route that is valid, and
    the suggested ROAs alone make every one of the holder's routes valid."""
    _vrps, store, table, rep = world
    res = audit(store, rep, {asn})
    assert res.routes and res.suggestions
    for r in res.roas:
        assert (SEEN in r.labels) == bool(r.authorizes)
        assert all(rep.states[i] is VALID for i in r.authorizes)
    s = VRPStore()
    s.replace("suggested", set(res.suggestions))
    check = make_checker(s)
    for i in res.routes:
        assert check(table.addrs[i], table.plens[i], table.origins[i]) is VALID
    # nothing unseen is authorized: every suggested (prefix, length) is announced by the holder
    announced = {(table.addrs[i], table.plens[i]) for i in res.routes}
    for v in res.suggestions:
        assert (v.addr, v.plen) in announced
