"""What `rtr`, `rtr replay` and `validate` tell the user: CSV export, one short line for the
StayRTR v2 -> v1 fallback (details at -v), `validate --aspa-compat`, readable replay totals,
expired VRPs and ASPA counted apart."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from rov_router.rpki.vrp import parse_prefix
from tests.support.env import DATA, SMALL, run_cli
from tests.support.peers import file_set

pytestmark = pytest.mark.interop


def test_rtr_csv_export_and_one_short_fallback_line(stayrtr, tmp_path):
    cache = stayrtr(SMALL)
    export, dump = tmp_path / "vrps.csv", tmp_path / "rtr.dump"
    r = run_cli("rtr", "--cache", f"127.0.0.1:{cache.port}", "--once", "--export", str(export),
                "--dump", str(dump))  # fmt: skip
    assert r.returncode == 0, r.stderr
    said = [x for x in (r.stdout + r.stderr).splitlines() if "draft-8210bis-10" in x]
    assert len(said) == 1 and len(said[0]) < 200, said
    assert "--aspa-compat draft10" in said[0]
    rows = list(csv.reader(io.StringIO(export.read_text())))
    assert rows[0] == ["ASN", "IP Prefix", "Max Length", "Trust Anchor"]
    got = {(r[0], r[1], int(r[2])) for r in rows[1:]}
    want = {(f"AS{v.asn}", v.prefix, v.maxlen) for v in file_set(SMALL)}
    assert got == want and len(rows) == 1 + len(want)
    # the details only with -v
    v = run_cli("-v", "rtr", "--cache", f"127.0.0.1:{cache.port}", "--once")
    assert "provider count in the body" in v.stderr
    assert "provider count in the body" not in r.stdout + r.stderr
    # replay ends with readable totals, not a Python dict
    rp = run_cli("rtr", "replay", str(dump))
    assert rp.returncode == 0, rp.stderr
    last = rp.stdout.strip().splitlines()[-1]
    assert "{" not in last and "table: 37 VRPs on" in last and "ASPA records" in last, last


def test_validate_accepts_aspa_compat(stayrtr):
    cache = stayrtr(SMALL)
    r = run_cli("validate", "--cache", f"127.0.0.1:{cache.port}", "--aspa-compat", "draft10",
                "192.0.2.0/24", "64496", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "valid"
    assert "draft-8210bis-10" not in r.stderr  # parsed, no fallback


def test_expired_vrps_and_aspa_are_counted_apart(tmp_path):
    past = int(time.time()) - 3600
    doc = {
        "roas": [
            {"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 64496, "expires": past},
            {"prefix": "198.51.100.0/24", "maxLength": 24, "asn": 64497, "expires": past},
        ],
        "aspas": [
            {"customer_asid": 64496, "providers": [64500], "expires": past},
            {"customer_asid": 64497, "providers": [64500], "expires": past},
            {"customer_asid": 64498, "providers": [64500], "expires": past},
        ],
    }
    f = tmp_path / "old.json"
    f.write_text(json.dumps(doc))
    r = run_cli("validate", "--vrps", str(f), "192.0.2.0/24", "64496")
    assert "all 2 VRPs have expired (and 3 ASPA entries)" in r.stderr, r.stderr
    assert parse_prefix("192.0.2.0/24") and (DATA / "small_vrps.json").exists()


def test_trust_anchor_kept_from_a_file_and_left_empty_from_rtr(tmp_path):
    """`cache --export` keeps the file's `ta`; over RTR there is none: the CSV keeps the
    column (empty), the JSON leaves the key out."""
    from tests.support.peers import SplitCache as Cache

    src = DATA / "stayrtr_test.rpki.json"  # real rpki-client output, ta per ROA
    want = {(f"AS{r['asn']}", r["prefix"], r["maxLength"], r["ta"])
            for r in json.loads(src.read_text())["roas"]}  # fmt: skip
    exp_csv, exp_json = tmp_path / "served.csv", tmp_path / "served.json"
    c = Cache(tmp_path, src, "--export", str(exp_csv))
    try:
        rows = list(csv.reader(io.StringIO(exp_csv.read_text())))
        assert rows[0] == ["ASN", "IP Prefix", "Max Length", "Trust Anchor"]
        assert {(a, p, int(m), t) for a, p, m, t in rows[1:]} == want
        # from RTR: no trust anchor
        out_csv, out_json = tmp_path / "rtr.csv", tmp_path / "rtr.json"
        for out in (out_csv, out_json):
            r = run_cli("rtr", "--cache", f"127.0.0.1:{c.port}", "--once", "--export", str(out))
            assert r.returncode == 0, r.stderr
    finally:
        c.stop()
    rows = list(csv.reader(io.StringIO(out_csv.read_text())))
    assert rows[0][3] == "Trust Anchor" and all(len(x) == 4 and x[3] == "" for x in rows[1:])
    assert {(a, p, int(m)) for a, p, m, _t in rows[1:]} == {w[:3] for w in want}
    roas = json.loads(out_json.read_text())["roas"]
    assert len(roas) == len(want) and not any("ta" in r for r in roas)
    # the CSV export read back (as a VRP file) keeps its trust anchors through a JSON export
    c = Cache(tmp_path, exp_csv, "--export", str(exp_json))
    c.stop()
    roas = json.loads(exp_json.read_text())["roas"]
    assert {(f"AS{r['asn']}", r["prefix"], r["maxLength"], r["ta"]) for r in roas} == want
