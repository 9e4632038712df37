"""The ExaBGP rov-router launches (``speaker.exabgp_command``) runs a whole command's prefixes in
one reactor turn: ``rov_router.bgp.exabgp_run`` raises ExaBGP's per-turn budget of command steps
(``ASYNC.LIMIT``, one step per prefix, 50 in ExaBGP), so a batch of prefixes sharing attributes
leaves as one UPDATE instead of one UPDATE per 50 prefixes (the pacing that made the downstream
path and the withdrawals slow).  Two real ExaBGP speakers on 127.0.0.x."""

from __future__ import annotations

import time

import pytest

from rov_router.bgp.control import Speaker
from rov_router.bgp.exabgp_run import ASYNC_LIMIT, async_limit
from rov_router.bgp.speaker import PeerSpec, exabgp_command
from rov_router.procs import free_port

pytestmark = pytest.mark.interop

TX, RX = "127.0.0.41", "127.0.0.42"
N = 600  # /24s: 2,400 bytes of NLRI, one UPDATE's worth


def test_launched_exabgp_runs_through_the_budget_raising_entry() -> None:
    assert exabgp_command()[1:] == ["-m", "rov_router.bgp.exabgp_run"]
    assert async_limit({}) == ASYNC_LIMIT >= 1000
    assert async_limit({"ROV_ROUTER_EXABGP_ASYNC_LIMIT": "300"}) == 300
    assert async_limit({"ROV_ROUTER_EXABGP_ASYNC_LIMIT": "x"}) == ASYNC_LIMIT


def _updates_with(rx: Speaker, prefixes: set[str], key: str, timeout: float = 30.0) -> list[int]:
    """Per UPDATE received from TX: how many of ``prefixes`` it announced (or withdrew)."""
    deadline = time.monotonic() + timeout
    while True:
        sizes = []
        for m in rx.messages("update"):
            u = m["neighbor"]["message"].get("update", {})
            got = 0
            for fam in u.get(key, {}).values():
                items = fam if key == "withdraw" else [x for v in fam.values() for x in v]
                got += sum(1 for x in items if (x if isinstance(x, str) else x["nlri"]) in prefixes)
            if got:
                sizes.append(got)
        if sum(sizes) >= len(prefixes) or time.monotonic() > deadline:
            return sizes
        time.sleep(0.1)


def test_a_batch_of_prefixes_leaves_as_one_update_announced_and_withdrawn(tmp_path) -> None:
    port = free_port(RX)
    rx = Speaker(
        "rx",
        [PeerSpec(TX, 65041, 65042, RX, RX, passive=True, hold_time=240)],
        tmp_path,
        listen=[RX],
        port=port,
    ).start()
    tx = Speaker(
        "tx",
        [PeerSpec(RX, 65042, 65041, TX, TX, passive=False, connect=port, hold_time=240)],
        tmp_path,
    ).start()
    try:
        tx.wait_state(RX, "up", 60)
        rx.wait_state(TX, "up", 60)
        prefixes = [f"10.{i // 256}.{i % 256}.0/24" for i in range(N)]
        nlri = " ".join(prefixes)
        cmd = f"neighbor {RX} announce attributes next-hop self as-path [ 65041 64512 ] nlri {nlri}"
        assert tx.command(cmd) == "done"
        sizes = _updates_with(rx, set(prefixes), "announce")
        assert sum(sizes) == N, sizes
        # ExaBGP's own budget (50 steps a turn) sends this as 12 UPDATEs of 50
        assert len(sizes) <= 2, f"{len(sizes)} UPDATEs of {sizes} prefixes"
        cmd = f"neighbor {RX} withdraw attributes next-hop self nlri {nlri}"
        assert tx.command(cmd) == "done"
        sizes = _updates_with(rx, set(prefixes), "withdraw")
        assert sum(sizes) == N, sizes
        assert len(sizes) <= 2, f"{len(sizes)} UPDATEs of {sizes} withdrawn prefixes"
    finally:
        tx.stop()
        rx.stop()
