"""Bad files and arguments: one line naming the file (record / offset for MRT), exit 1, never a
traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rov_router.bgp.mrt import MRTError, raw_records, read_updates
from tests.support.env import run_cli

MRT_GZ = Path(__file__).resolve().parents[2] / "topologies/data/youtube-pakistan-2008-as3277.mrt.gz"


def _one_error_line(r, *needles: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def raw_mrt(tmp_path) -> bytes:
    return gzip.open(MRT_GZ).read()


def test_truncated_mrt_gz(tmp_path):
    data = MRT_GZ.read_bytes()
    bad = tmp_path / "cut.mrt.gz"
    bad.write_bytes(data[: len(data) // 2])
    r = run_cli("replay", str(bad), "--router", "127.0.0.1:1", timeout=30)
    _one_error_line(r, str(bad), "compressed data ends early", "record 1", "offset 0")


def test_bit_flipped_mrt_names_the_record_and_offset(tmp_path, raw_mrt):
    records = list(raw_records(MRT_GZ))
    offset = len(records[0]) + len(records[1])  # the third record
    b = bytearray(raw_mrt)
    b[offset + 5] ^= 0x40  # its MRT type: 16 (BGP4MP) becomes 80, which mrtparse does not know
    bad = tmp_path / "flip.mrt"
    bad.write_bytes(bytes(b))
    r = run_cli("replay", str(bad), "--router", "127.0.0.1:1", timeout=30)
    _one_error_line(r, str(bad), f"record 3 at offset {offset}")


def test_raw_mrt_truncated_mid_record_is_an_error_not_a_shorter_file(tmp_path, raw_mrt):
    records = list(raw_records(MRT_GZ))
    offset = sum(len(x) for x in records[:3])
    bad = tmp_path / "cut.mrt"
    bad.write_bytes(raw_mrt[: offset + 20])  # record 4 cut after 20 bytes
    with pytest.raises(MRTError, match=rf"record 4 at offset {offset}"):
        list(read_updates(bad))
    with pytest.raises(MRTError, match=rf"record 4 at offset {offset}"):
        list(raw_records(bad))
    r = run_cli("replay", str(bad), "--router", "127.0.0.1:1", timeout=30)
    _one_error_line(r, str(bad), f"record 4 at offset {offset}")


def test_run_config_on_a_binary_file(tmp_path):
    bad = tmp_path / "router.toml"
    bad.write_bytes(b"[router]\nasn = 1\n" + bytes(range(256)))
    r = run_cli("run", "--config", str(bad), timeout=30)
    _one_error_line(r, str(bad), "not a text (UTF-8) file")


def test_listen_port_out_of_range():
    r = run_cli("cache", "--vrps", "x.json", "--listen", "127.0.0.1:99999", timeout=30)
    _one_error_line(r, "--listen 127.0.0.1:99999", "port must be 0-65535")


@pytest.mark.parametrize(
    "args",
    [("rtr", "--once"), ("validate", "192.0.2.0/24", "64496")],
    ids=["rtr --once", "validate --cache"],
)
def test_timeout_when_no_sync_completes(args):
    from rov_router.procs import free_port

    dead = f"127.0.0.1:{free_port()}"
    r = run_cli(*args, "--cache", dead, "--timeout", "1", timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("rov-router: error: no complete sync") and "within 1 s" in last, last
    assert dead in last and "Traceback" not in r.stderr


def test_rtr_replay_of_a_missing_dump_is_one_line(tmp_path):
    missing = tmp_path / "no.dump"
    r = run_cli("rtr", "replay", str(missing))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert (
        r.stderr.strip() == f"rov-router: error: {missing}: cannot read: No such file or directory"
    )
