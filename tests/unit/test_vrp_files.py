"""VRP file loaders: formats, expiry, compression, and errors that name file, entry, reason."""

from __future__ import annotations

import gzip
import json
import lzma

import pytest

from rov_router.rpki.vrp import VRP, VRPFileError, load_vrp_file, vrps_to_json
from tests.support.env import DATA


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_small_set_string_asns_and_duplicates():
    s = load_vrp_file(DATA / "small_vrps.json")
    assert len(s.vrps) == 37 and s.entries == 38 and s.duplicates == 1
    assert VRP.parse("198.51.100.0/24", 24, 64497) in s.vrps  # "AS64497"
    assert VRP.parse("151.101.0.0/16", 16, 64513) in s.vrps  # "as64513"
    # the per-AFI provider_authorizations merge into one provider set per customer
    assert s.aspas == {64496: (64500, 64501), 64497: (0,), 64520: (13335, 15169, 64521)}


def test_new_aspas_schema_and_bgpsec_keys(tmp_path):
    doc = {
        "roas": [],
        "aspas": [{"customer_asid": 64500, "providers": [64502, 64501]}],
        "bgpsec_keys": [{"asn": 64496, "ski": "ab" * 20, "pubkey": "MAECAQ=="}],
    }
    s = load_vrp_file(write(tmp_path, "a.json", json.dumps(doc)))
    assert s.aspas == {64500: (64501, 64502)}
    (k,) = s.router_keys
    assert k.asn == 64496 and k.ski == bytes.fromhex("ab" * 20)


def test_expired_entries_dropped_and_counted(tmp_path):
    doc = {
        "roas": [
            {"prefix": "10.0.0.0/8", "maxLength": 8, "asn": 1, "expires": 1},
            {"prefix": "11.0.0.0/8", "maxLength": 8, "asn": 1, "expires": 4102444800},
        ]
    }
    p = write(tmp_path, "e.json", json.dumps(doc))
    s = load_vrp_file(p)
    assert s.expired == 1 and len(s.vrps) == 1
    assert len(load_vrp_file(p, ignore_expires=True).vrps) == 2


def test_compressed_files(tmp_path):
    raw = (DATA / "small_vrps.json").read_bytes()
    (tmp_path / "a.json.xz").write_bytes(lzma.compress(raw))
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(raw))
    assert load_vrp_file(tmp_path / "a.json.xz").vrps == load_vrp_file(tmp_path / "a.json.gz").vrps


@pytest.mark.parametrize(
    "text",
    [
        "ASN,IP Prefix,Max Length,Trust Anchor\nAS13335,1.0.0.0/24,24,apnic\nAS0,2001:db8::/32,48,x\n",
        "prefix,maxLength,asn\n1.0.0.0/24,24,13335\n2001:db8::/32,48,0\n",
        "1.0.0.0/24,24,AS13335\n2001:db8::/32,48,0\n",
    ],
)
def test_csv_variants(tmp_path, text):
    s = load_vrp_file(write(tmp_path, "v.csv", text))
    assert s.vrps == {VRP.parse("1.0.0.0/24", 24, 13335), VRP.parse("2001:db8::/32", 48, 0)}


@pytest.mark.parametrize(
    "entry,reason",
    [
        ({"prefix": "10.0.0.0/8", "maxLength": 40, "asn": 1}, "maxLength 40 outside 8..32"),
        ({"prefix": "10.0.0.0/33", "maxLength": 33, "asn": 1}, "bad prefix length"),
        ({"prefix": "10.0.0.300/8", "maxLength": 8, "asn": 1}, "bad address"),
        ({"prefix": "10.0.0.0/8", "maxLength": 8, "asn": "ASX"}, "bad ASN"),
        ({"prefix": "10.0.0.0/8", "maxLength": 8, "asn": 2**32}, "outside 0..4294967295"),
        ({"prefix": "10.0.0.0/8", "maxLength": 8}, "missing key 'asn'"),
    ],
)
def test_bad_entry_names_file_entry_and_reason(tmp_path, entry, reason):
    doc = {"roas": [{"prefix": "11.0.0.0/8", "maxLength": 8, "asn": 1}, entry]}
    p = write(tmp_path, "bad.json", json.dumps(doc))
    with pytest.raises(VRPFileError) as e:
        load_vrp_file(p)
    assert str(p) in str(e.value) and "roas[1]" in str(e.value) and reason in str(e.value)


def test_unreadable_and_garbage_files(tmp_path):
    with pytest.raises(VRPFileError, match="cannot read"):
        load_vrp_file(tmp_path / "missing.json")
    with pytest.raises(VRPFileError, match="not valid JSON"):
        load_vrp_file(write(tmp_path, "g.json", "{not json"))
    with pytest.raises(VRPFileError, match="line 2"):
        load_vrp_file(write(tmp_path, "g.csv", "1.0.0.0/24,24,1\nfoo,bar,baz\n"))
    (tmp_path / "t.json.xz").write_bytes(b"\xfd7zXZ\x00garbage")
    with pytest.raises(VRPFileError, match="cannot read"):
        load_vrp_file(tmp_path / "t.json.xz")


def test_host_bits_refuse_the_file_naming_the_entry(tmp_path):
    """As SLURM (RFC 8416) does: a prefix with host bits is an error, not silently masked (a
    typo there is a different prefix than the author meant)."""
    doc = {"roas": [{"prefix": "10.0.0.0/8", "maxLength": 8, "asn": 1}]}
    doc["roas"].append({"prefix": "192.0.2.1/24", "maxLength": 24, "asn": 1})
    p = write(tmp_path, "h.json", json.dumps(doc))
    with pytest.raises(VRPFileError) as e:
        load_vrp_file(p)
    assert str(e.value) == (
        f"{p}: roas[1]: prefix '192.0.2.1/24' has bits set beyond /24 (the network is 192.0.2.0/24)"
    )
    c = write(tmp_path, "h.csv", "prefix,maxLength,asn\n10.0.0.0/8,8,1\n2001:db8::1/32,48,2\n")
    with pytest.raises(VRPFileError, match=r"line 3: prefix '2001:db8::1/32' has bits set"):
        load_vrp_file(c)


@pytest.mark.parametrize(
    "doc,where,reason",
    [
        ({"roas": ["192.0.2.0/24"]}, "roas[0]", "expected an object (prefix, maxLength, asn), got the string '192.0.2.0/24'"),
        ({"roas": [{"prefix": 24, "maxLength": 24, "asn": 1}]}, "roas[0]", 'prefix must be a string like "192.0.2.0/24", got the number 24'),
        ({"roas": [{"prefix": "10.0.0.0/8", "maxLength": "x", "asn": 1}]}, "roas[0]", "maxLength must be a whole number, got the string 'x'"),
        ({"roas": [{"prefix": "10.0.0.0/8", "maxLength": 8, "asn": [1]}]}, "roas[0]", 'bad ASN: expected a number or "AS64496", got a list'),
        ({"roas": [{"prefix": "10.0.0.0/8", "maxLength": 8, "asn": 1, "expires": "soon"}]}, "roas[0]", "'expires' must be a Unix time (a number), got the string 'soon'"),
        ({"roas": [], "aspas": ["AS1"]}, "aspas[0]", "expected an object (customer_asid, providers), got the string 'AS1'"),
        ({"roas": [], "aspas": [{"customer_asid": 1, "providers": 2}]}, "aspas[0]", "'providers' must be a list of ASNs, got the number 2"),
        ({"roas": [], "bgpsec_keys": [{"asn": 1, "ski": "zz", "pubkey": "AA=="}]}, "bgpsec_keys[0]", "'ski' must be 40 hexadecimal digits, got the string 'zz'"),
        ({"roas": [], "bgpsec_keys": [{"asn": 1, "ski": "ab" * 20, "pubkey": "A"}]}, "bgpsec_keys[0]", "'pubkey' must be base64"),
        ({"roas": [], "bgpsec_keys": ["x"]}, "bgpsec_keys[0]", "expected an object (asn, ski, pubkey), got the string 'x'"),
    ],
)  # fmt: skip
def test_bad_shapes_say_what_was_expected_not_python_text(tmp_path, doc, where, reason):
    p = write(tmp_path, "s.json", json.dumps(doc))
    with pytest.raises(VRPFileError) as e:
        load_vrp_file(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: {where}: {reason}"), msg
    for leak in ("object has no attribute", "indices must be", "not subscriptable", "invalid literal", "fromhex", "padding", "NoneType"):  # fmt: skip
        assert leak not in msg


def test_export_round_trip(tmp_path):
    s = load_vrp_file(DATA / "small_vrps.json")
    p = write(tmp_path, "x.json", json.dumps(vrps_to_json(s.vrps, s.aspas, s.router_keys)))
    back = load_vrp_file(p)
    assert back.vrps == s.vrps and back.aspas == s.aspas


def test_routinator_json_and_aspa(tmp_path):
    doc = {
        "metadata": {"generated": 1700000000},
        "roas": [{"asn": "AS13335", "prefix": "1.0.0.0/24", "maxLength": 24, "ta": "apnic"}],
        "aspas": [{"customer": "AS64496", "providers": ["AS64497", "AS64498"]}],
    }
    s = load_vrp_file(write(tmp_path, "r.json", json.dumps(doc)))
    assert s.vrps == {VRP.parse("1.0.0.0/24", 24, 13335)}
    assert s.aspas == {64496: (64497, 64498)}


def test_fast_and_careful_readers_agree_entry_by_entry(tmp_path):
    """The loader reads the common rpki-client shape on a fast path and falls back to the
    per-entry checks for anything else; both must give the same set and counts."""
    from rov_router.rpki.vrp import _parse_roa

    now = 1_700_000_000
    common = [
        {"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 64496, "ta": "x"},
        {"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 64496},  # duplicate
        {"prefix": "2001:db8::/32", "maxLength": 48, "asn": 0, "expires": now + 10},
        {"prefix": "198.51.100.0/22", "maxLength": 24, "asn": 4_200_000_000, "expires": 1.5},
        {"prefix": "0.0.0.0/0", "maxLength": 32, "asn": 1},
        {"prefix": "::/0", "maxLength": 128, "asn": 1},
    ]
    odd = [  # each one valid, but off the fast path's shape
        {"prefix": " 203.0.113.0/24", "maxLength": 24, "asn": 1},
        {"prefix": "203.0.113.0/024", "maxLength": 24, "asn": 1},
        {"prefix": "203.0.113.0/24", "max_length": 25, "asn": "AS7"},
        {"prefix": "203.0.113.0/24", "asn": 8},
        {"prefix": "203.0.113.0/24", "maxLength": "26", "asn": 9},
        {"prefix": "2001:DB8:1::/48", "maxLength": None, "asn": 10},
    ]
    for roas in (common, common + odd, odd + common):
        p = write(tmp_path, "v.json", json.dumps({"roas": roas}))
        for ignore in (False, True):
            s = load_vrp_file(p, now=now, ignore_expires=ignore)
            want = [_parse_roa(str(p), i, r, now, ignore) for i, r in enumerate(roas)]
            kept = [v for v in want if v is not None]
            assert s.vrps == set(kept)
            assert (s.entries, s.duplicates, s.expired) == (
                len(kept),
                len(kept) - len(set(kept)),
                len(want) - len(kept),
            )
    # odd + common: 12 entries, one expired (expires 1.5), two duplicates (" 203..", "/024")
    assert len(load_vrp_file(p, now=now).vrps) == 9


@pytest.mark.parametrize(
    "entry,reason",
    [
        ({"prefix": "10.0.0.1/8", "maxLength": 8, "asn": 1}, "bits set beyond /8"),
        ({"prefix": "2001:db8::/32", "maxLength": 129, "asn": 1}, "outside 32..128"),
        ({"prefix": "10.0.0.0/8", "maxLength": True, "asn": 1}, "whole number, got true"),
        ({"prefix": "10.0.0.0/8", "maxLength": 8, "asn": -1}, "outside 0..4294967295"),
        ({"prefix": "10.0.0.0/8", "maxLength": 8, "asn": 1, "expires": "soon"}, "Unix time"),
        ({"prefix": 10, "maxLength": 8, "asn": 1}, "prefix must be a string"),
        (["10.0.0.0/8", 8, 1], "expected an object"),
    ],
)
def test_a_bad_entry_late_in_a_big_file_is_named(tmp_path, entry, reason):
    """The fast path gives up at the first odd entry; the careful pass names it exactly."""
    roas = [
        {"prefix": f"10.{i >> 8}.{i & 255}.0/24", "maxLength": 24, "asn": i} for i in range(3000)
    ]
    roas.insert(2500, entry)
    p = write(tmp_path, "bad.json", json.dumps({"roas": roas}))
    with pytest.raises(VRPFileError) as e:
        load_vrp_file(p, now=0)
    assert "roas[2500]" in str(e.value) and reason in str(e.value), str(e.value)


def test_trust_anchors_kept_only_when_asked(tmp_path):
    from rov_router.rpki.vrp import vrps_to_csv

    doc = {"roas": [{"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 64496, "ta": "ripe"},
                    {"prefix": "192.0.2.0/24", "maxLength": 24, "asn": 64496, "ta": "arin"},
                    {"prefix": "198.51.100.0/24", "maxLength": 24, "asn": 64497}]}  # fmt: skip
    p = write(tmp_path, "x.json", json.dumps(doc))
    assert load_vrp_file(p).tas is None  # not asked: nothing kept
    s = load_vrp_file(p, keep_ta=True)
    v1 = VRP.parse("192.0.2.0/24", 24, 64496)
    assert s.tas == {v1: "ripe"}  # the first TA of a VRP listed twice; none for the third
    text = vrps_to_csv(s.vrps, s.tas)
    assert text.splitlines() == [
        "ASN,IP Prefix,Max Length,Trust Anchor",
        "AS64496,192.0.2.0/24,24,ripe",
        "AS64497,198.51.100.0/24,24,",
    ]
    roas = vrps_to_json(s.vrps, tas=s.tas)["roas"]
    assert roas[0]["ta"] == "ripe" and "ta" not in roas[1]
    assert all("ta" not in r for r in vrps_to_json(s.vrps)["roas"])
    back = load_vrp_file(write(tmp_path, "x.csv", text), keep_ta=True)
    assert back.vrps == s.vrps and back.tas == s.tas
