"""rov-router analyze against RTRlib 0.8 ``rpki-rov`` on the full CAIDA table: the states, the
NIST invalid categories and the covering VRPs behind them (rpki-rov prints the covering VRPs
of every query), and the covering-route answers against an independent reference built on
rpki-rov's verdicts."""

from __future__ import annotations

import json
import lzma
import subprocess

import pytest

from rov_router.analysis.report import (
    CAT_AS,
    CAT_BOTH,
    CAT_LENGTH,
    DEFAULT_ROUTE,
    LESS_SPECIFIC,
    SAME_PREFIX,
)
from rov_router.analysis.report import analyze as analyze_table
from rov_router.analysis.table import read_table
from rov_router.rpki.vrp import VRP
from tests.support.env import need_shared, need_tool
from tests.support.peers import CODES, sync

pytestmark = [pytest.mark.interop, pytest.mark.largedata]


def rpki_rov_full(port: int, lines: list[str]) -> list[tuple[str, set[VRP]]]:
    """rpki-rov's verdict and covering VRPs per input line ('IP LEN ASN|VRPs|CODE')."""
    exe = need_tool("rpki-rov")
    r = subprocess.run(
        [exe, "127.0.0.1", str(port)],
        input="".join(lines),
        text=True,
        capture_output=True,
        timeout=600,
    )
    out = [x for x in r.stdout.splitlines() if x.count("|") == 2]
    assert len(out) == len(lines), (r.stdout[-500:], r.stderr[-2000:])
    res = []
    for x in out:
        _q, vrps, code = x.split("|")
        cov = set()
        for item in filter(None, vrps.split(",")):
            asn, addr, plen, maxlen = item.split()
            cov.add(VRP.parse(f"{addr}/{plen}", int(maxlen), int(asn) & 0xFFFFFFFF))
        res.append((CODES[code.strip()], cov))
    return res


def rtrlib_category(plen: int, origin: int, cov: set[VRP]) -> str:
    if any(v.asn == origin and v.asn for v in cov):
        return CAT_LENGTH
    return CAT_AS if any(v.maxlen >= plen for v in cov) else CAT_BOTH


def test_analyze_full_caida_table_matches_rpki_rov(stayrtr, tmp_path):
    src = need_shared("vrps/rpki-client_ripe-prepdev_20230504.json.xz")
    routes_file = need_shared("routes/caida_routeviews-rv2-20240406.pfx2as.gz")
    with lzma.open(src) as fh:
        doc = json.load(fh)
    for r in doc["roas"]:
        r.pop("expires", None)
    f = tmp_path / "prepdev.json"
    f.write_text(json.dumps(doc))
    cache = stayrtr(f, protocol=1)
    store = sync(cache.port, max_version=1)  # the same path as 'analyze --cache'
    assert store.vrp_count() == 424_223
    table = read_table(routes_file)
    assert len(table) > 1_000_000
    rep = analyze_table(store, table)
    # rpki-rov cannot express an AS_SET origin (NONE): those routes are left out of its input
    idx = [i for i in range(len(table)) if table.origins[i] is not None]
    assert len(table) - len(idx) < 2000
    lines = []
    for i in idx:
        p, n = table.prefix(i).split("/")
        lines.append(f"{p} {n} {table.origins[i]}\n")
    theirs = rpki_rov_full(cache.port, lines)
    state_mismatch, cat_mismatch, vrp_mismatch = [], [], []
    rtr_states = {}
    for i, (state, cov) in zip(idx, theirs, strict=True):
        rtr_states[i] = state
        if str(rep.states[i]) != state:
            state_mismatch.append((table.prefix(i), table.origins[i], rep.states[i], state))
            continue
        if state != "invalid":
            continue
        ours = {v for v in rep.verdict(i).covering}
        if ours != cov:
            vrp_mismatch.append((table.prefix(i), table.origins[i]))
        if rep.categories[i] != rtrlib_category(table.plens[i], table.origins[i], cov):
            cat_mismatch.append((table.prefix(i), table.origins[i], rep.categories[i]))
    assert not state_mismatch, state_mismatch[:20]
    assert not vrp_mismatch, vrp_mismatch[:20]
    assert not cat_mismatch, cat_mismatch[:20]
    cats = rep.category_counts()
    assert min(cats.values()) > 1000, cats  # the data exercises every category
    # covering routes: a reference that enumerates every shorter prefix of the invalid route
    # in a dict of the prefixes holding a route rpki-rov calls valid / not-found
    # (AS_SET routes, which rpki-rov cannot be asked about, keep our verdict)
    ok: dict[tuple[bytes, int], int] = {}
    for i in range(len(table)):
        if rtr_states.get(i, str(rep.states[i])) != "invalid":
            ok.setdefault((table.addrs[i], table.plens[i]), i)
    wrong = []
    checked = 0
    for i in rep.invalid:
        a, plen = table.addrs[i], table.plens[i]
        ai = int.from_bytes(a, "big")
        ref = None
        for q in range(plen, -1, -1):
            qa = (ai >> (32 - q) << (32 - q) if q else 0).to_bytes(4, "big")
            j = ok.get((qa, q))
            if j is not None:
                kind = SAME_PREFIX if q == plen else (DEFAULT_ROUTE if q == 0 else LESS_SPECIFIC)
                ref = (kind, j)
                break
        checked += 1
        if rep.cover[i] != ref:
            wrong.append((table.prefix(i), table.origins[i], rep.cover[i], ref))
    assert checked == len(rep.invalid) > 60_000
    assert not wrong, wrong[:20]


def test_analyze_cli_with_cache_small_routes(stayrtr):
    """``analyze --cache`` syncs from a real StayRTR and its states equal the verdicts BIRD 2,
    RTRlib and GoBGP agreed on for the 80 small routes."""
    from tests.support.env import DATA, run_cli

    cache = stayrtr(DATA / "small_vrps.json")
    routes = DATA / "small_routes.txt"
    r = run_cli("analyze", str(routes), "--cache", f"127.0.0.1:{cache.port}", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["vrps"] == 37
    expected = [
        line.split()[2]
        for line in routes.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert doc["table"]["routes"] == len(expected) == 80
    counts = {s: expected.count(s) for s in ("valid", "invalid", "not-found")}
    assert doc["states"] == counts
    assert sum(doc["invalid_categories"].values()) == counts["invalid"]
    invalid = [
        line.split()[:2]
        for line in routes.read_text().splitlines()
        if line.strip() and not line.startswith("#") and line.split()[2] == "invalid"
    ]
    assert [[x["prefix"], str(x["origin"])] for x in doc["invalid_routes"]] == invalid
