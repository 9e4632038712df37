"""Our RTR client against a real StayRTR (Debian package) on loopback."""

from __future__ import annotations

import asyncio
import json
import lzma
import random
import time

import pytest

from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP
from rov_router.rtr import session as S
from rov_router.rtr.client import Applied, RTRClient, replay
from tests.support.env import DATA, need_shared, run_cli
from tests.support.peers import file_set

pytestmark = pytest.mark.interop

SMALL = DATA / "small_vrps.json"
PREPDEV = "vrps/rpki-client_ripe-prepdev_20230504.json.xz"


async def _follow(port: int, until, timeout: float = 60.0, **kw):
    """Run a client until ``until(events)`` holds; return (store, client, events)."""
    store = VRPStore()
    events: list[S.Event] = []
    client = RTRClient("127.0.0.1", port, store, on_event=events.append, max_backoff=0.5, **kw)
    task = asyncio.ensure_future(client.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(events):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; events: {events[-10:]}, {client.last_error}")
            await asyncio.sleep(0.02)
    finally:
        client.stop()
        await task
    return store, client, events


def synced(n: int = 1):
    return lambda evs: sum(isinstance(e, S.Synced) for e in evs) >= n


def sync_change_resync(cache, f, doc: dict, mutate, timeout: float = 60.0, **kw):
    """Sync, let ``mutate(doc)`` change the file, SIGHUP StayRTR, follow until a second update.
    Returns (store, events, table after the first sync)."""

    async def run():
        store = VRPStore()
        events: list[S.Event] = []
        client = RTRClient("127.0.0.1", cache.port, store, on_event=events.append, **kw)
        task = asyncio.ensure_future(client.run())
        try:
            await client.wait_synced(120)
            first = set(store.iter_vrps())
            mutate(doc)
            f.write_text(json.dumps(doc))
            cache.reload()
            deadline = asyncio.get_running_loop().time() + timeout
            while not synced(2)(events) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
        finally:
            client.stop()
            await task
        return store, events, first

    return asyncio.run(run())


@pytest.mark.parametrize("version", [0, 1])
def test_small_set_each_version(stayrtr, version):
    cache = stayrtr(SMALL)
    store, client, _events = asyncio.run(
        _follow(cache.port, synced(), min_version=version, max_version=version)
    )
    assert client.session.version == version
    assert set(store.iter_vrps()) == file_set(SMALL)
    assert store.counts(client.source)["vrps"] == 37
    # StayRTR logs the version it served when the client disconnects (written after we close)
    deadline = time.monotonic() + 5
    while f"(v{version})" not in cache.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"(v{version})" in cache.log_text()


def test_v2_draft10_aspa_falls_back_to_v1_and_says_why(stayrtr):
    cache = stayrtr(SMALL)
    store, client, events = asyncio.run(_follow(cache.port, synced()))
    changes = [e for e in events if isinstance(e, S.VersionChanged)]
    assert changes and changes[0].old == 2 and changes[0].new == 1
    assert "draft-8210bis-10" in changes[0].reason
    assert client.session.version == 1
    assert set(store.iter_vrps()) == file_set(SMALL)
    assert store.aspas() == {}


def test_v2_draft10_compat_mode_reads_aspa(stayrtr):
    cache = stayrtr(SMALL)
    store, client, _ = asyncio.run(_follow(cache.port, synced(), aspa_compat="draft10"))
    assert client.session.version == 2
    assert set(store.iter_vrps()) == file_set(SMALL)
    # the per-AFI lists of AS64496 ({64500, 64501} and {64500}) merge into one record
    assert store.aspas() == {64496: (64500, 64501), 64497: (0,), 64520: (13335, 15169, 64521)}


def test_sighup_delta_arrives_by_serial_query(stayrtr, tmp_path):
    f = tmp_path / "vrps.json"
    doc = json.loads(SMALL.read_text())
    f.write_text(json.dumps(doc))
    cache = stayrtr(f)
    removed = doc["roas"][10]  # 8.8.4.0/24-24 AS15169

    def mutate(d):
        d["roas"].remove(removed)
        d["roas"].append({"prefix": "203.0.113.0/24", "maxLength": 24, "asn": 64999})

    store, events, _first = sync_change_resync(cache, f, doc, mutate, max_version=1)
    syncs = [e for e in events if isinstance(e, S.Synced)]
    assert len(syncs) == 2, events
    assert syncs[0].reset and not syncs[1].reset  # the delta came by Serial Query
    assert any(isinstance(e, S.NotifyReceived) for e in events)
    applied = [e for e in events if isinstance(e, Applied)]
    assert applied[-1].changes.vrps_added == 1 and applied[-1].changes.vrps_removed == 1
    assert applied[-1].changes.prefix_strings() == ["203.0.113.0/24", "8.8.4.0/24"]
    assert set(store.iter_vrps()) == file_set(f)
    assert VRP.parse(removed["prefix"], 24, 15169) not in set(store.iter_vrps())


def test_cli_once_export_dump_and_replay(stayrtr, tmp_path):
    cache = stayrtr(SMALL)
    export = tmp_path / "out.json"
    dump = tmp_path / "rtr.dump"
    datadir = tmp_path / "data"
    r = run_cli(
        "rtr",
        "--cache",
        f"127.0.0.1:{cache.port}",
        "--max-version",
        "1",
        "--once",
        "--json",
        "--export",
        str(export),
        "--dump",
        str(dump),
        "--data-dir",
        str(datadir),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    syn = [x for x in lines if x.get("event") == "synced"]
    assert syn and syn[0]["vrps"] == 37 and syn[0]["version"] == 1
    assert file_set(export) == file_set(SMALL)
    serial_file = datadir / f"serial-{syn[0]['serial']}.json"
    assert len(json.loads(serial_file.read_text())["announced"]) == 37
    assert file_set(datadir / "vrps.json") == file_set(SMALL)
    # the recorded stream replays through the same state machine to the same table
    store = VRPStore()
    res = replay(dump, store, max_version=1)
    assert res.connections == 1 and res.sent_mismatches == 0
    assert set(store.iter_vrps()) == file_set(SMALL)
    r2 = run_cli("rtr", "replay", str(dump), "--max-version", "1", "--json", timeout=60)
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout.splitlines()[-1])["vrps"] == 37


def _prepdev_without_expires(dst) -> dict:
    src = need_shared(PREPDEV)
    with lzma.open(src) as fh:
        doc = json.load(fh)
    for r in doc["roas"]:
        r.pop("expires", None)
    dst.write_text(json.dumps(doc))
    return doc


@pytest.mark.largedata
def test_prepdev_full_sync_then_incremental(stayrtr, tmp_path):
    f = tmp_path / "prepdev.json"
    doc = _prepdev_without_expires(f)
    cache = stayrtr(f, protocol=1)
    expected = file_set(need_shared(PREPDEV))  # read from the shared file, not via StayRTR
    assert len(expected) == 424_223
    # the CLI: --once exits after the first End of Data and exports the table
    export = tmp_path / "export.json"
    r = run_cli(
        "rtr",
        "--cache",
        f"127.0.0.1:{cache.port}",
        "--once",
        "--json",
        "--export",
        str(export),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (syn,) = [json.loads(x) for x in r.stdout.splitlines() if '"synced"' in x]
    assert syn["vrps"] == 424_223 and syn["vrps_v4"] == 323_603 and syn["vrps_v6"] == 100_620
    assert file_set(export) == expected

    def mutate(d):
        rnd = random.Random(20230504)
        gone = set(rnd.sample(range(len(d["roas"])), 1000))
        d["roas"] = [r for i, r in enumerate(d["roas"]) if i not in gone]
        for i in range(500):
            d["roas"].append(
                {"prefix": f"2001:db8:{i:x}::/48", "maxLength": 48, "asn": 64496 + i % 10}
            )

    store, events, first = sync_change_resync(cache, f, doc, mutate, timeout=120)
    assert len(first) == 424_223
    assert first == expected
    syncs = [e for e in events if isinstance(e, S.Synced)]
    assert len(syncs) == 2 and syncs[0].reset and not syncs[1].reset
    now = set(store.iter_vrps())
    assert len(now) == 424_223 - 1000 + 500
    assert now == file_set(f)
    applied = [e for e in events if isinstance(e, Applied)][-1].changes
    assert (applied.vrps_added, applied.vrps_removed) == (500, 1000)
