"""Cross-checks against RTRlib 0.8 (Debian rtr-tools): rtrclient's table and rpki-rov's verdicts."""

from __future__ import annotations

import gzip
import json
import lzma
import socket
import subprocess

import pytest

from rov_router.rpki.validate import make_checker, validate
from rov_router.rpki.vrp import VRP
from tests.support.env import DATA, need_shared, need_tool
from tests.support.peers import CODES, sync

pytestmark = pytest.mark.interop
SMALL = DATA / "small_vrps.json"


def rpki_rov(port: int, lines: list[str]) -> list[str]:
    """rpki-rov's verdicts, in input order (it reads 'IP MASKLEN ASN', answers '...|CODE')."""
    exe = need_tool("rpki-rov")
    r = subprocess.run(
        [exe, "127.0.0.1", str(port)],
        input="".join(lines),
        text=True,
        capture_output=True,
        timeout=300,
    )
    out = [x for x in r.stdout.splitlines() if "|" in x]
    assert len(out) == len(lines), (r.stdout[-500:], r.stderr[-2000:])
    return [CODES[x.rsplit("|", 1)[1].strip()] for x in out]


def test_rtrclient_table_equals_ours(stayrtr, tmp_path):
    exe = need_tool("rtrclient")
    cache = stayrtr(SMALL)
    out = tmp_path / "rtrclient.csv"
    subprocess.run(
        [exe, "-e", "-t", "csv", "-o", str(out), "tcp", "127.0.0.1", str(cache.port)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = set()
    for line in out.read_text().splitlines():
        if line.count(",") != 3:
            continue  # a blank or status line
        addr, plen, maxlen, asn = (x.strip() for x in line.split(","))
        # RTRlib 0.8 prints 4-byte ASNs as signed 32-bit ints in its exports
        theirs.add(VRP.parse(f"{addr}/{plen}", int(maxlen), int(asn) & 0xFFFFFFFF))
    ours = set(sync(cache.port, max_version=1).iter_vrps())
    assert len(ours) == 37
    assert ours == theirs


def test_small_routes_verdicts_match_rpki_rov_and_expected(stayrtr):
    cache = stayrtr(SMALL)
    store = sync(cache.port, max_version=1)
    routes = []
    for line in (DATA / "small_routes.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        p, o, expected = line.split()[:3]
        routes.append((p, int(o), expected))
    lines = [f"{p.split('/')[0]} {p.split('/')[1]} {o}\n" for p, o, _ in routes]
    theirs = rpki_rov(cache.port, lines)
    ours = [str(validate(store, p, o).state) for p, o, _ in routes]
    expected = [e for _, _, e in routes]
    assert ours == expected
    assert ours == theirs


@pytest.mark.largedata
def test_caida_routes_verdicts_match_rpki_rov(stayrtr, tmp_path):
    """All 998k CAIDA RouteViews routes (MOAS split per origin; AS_SET origins left out, as
    rpki-rov cannot express NONE) against the 424k prepdev VRPs: 0 mismatches."""
    src = need_shared("vrps/rpki-client_ripe-prepdev_20230504.json.xz")
    routes_file = need_shared("routes/caida_routeviews-rv2-20240406.pfx2as.gz")
    with lzma.open(src) as fh:
        doc = json.load(fh)
    for r in doc["roas"]:
        r.pop("expires", None)
    f = tmp_path / "prepdev.json"
    f.write_text(json.dumps(doc))
    cache = stayrtr(f, protocol=1)
    routes: list[tuple[str, int, int]] = []
    with gzip.open(routes_file, "rt") as fh:
        for line in fh:
            p, n, origins = line.rstrip("\n").split("\t")
            if "," in origins:
                continue
            routes.extend((p, int(n), int(o)) for o in origins.split("_"))
    assert len(routes) > 990_000
    theirs = rpki_rov(cache.port, [f"{p} {n} {o}\n" for p, n, o in routes])
    store = sync(cache.port, max_version=1)
    assert store.vrp_count() == 424_223
    check = make_checker(store)
    mismatches = []
    counts = {"valid": 0, "invalid": 0, "not-found": 0}
    for (p, n, o), t in zip(routes, theirs, strict=True):
        fam = socket.AF_INET6 if ":" in p else socket.AF_INET
        ours = str(check(socket.inet_pton(fam, p), n, o))
        counts[ours] += 1
        if ours != t:
            mismatches.append((p, n, o, ours, t))
    assert not mismatches, mismatches[:20]
    # the data really exercises all three states
    assert min(counts.values()) > 1000, counts
