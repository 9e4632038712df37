"""Several caches by preference (RFC 8210 §10): the preferred cache goes away, the backup takes
over with no moment without VRPs, the preferred comes back and the backup stands by again."""

from __future__ import annotations

import asyncio

import pytest

from rov_router.rpki.store import VRPStore
from rov_router.rpki.validate import validate
from rov_router.rpki.vrp import VRP
from rov_router.rtr.cache import CacheState
from rov_router.rtr.client import RTRClient, RTRManager
from rov_router.rtr.server import RTRServer

pytestmark = pytest.mark.interop


def test_failover_to_backup_and_back_without_a_gap():
    a = VRP.parse("192.0.2.0/24", 24, 64496)
    b = VRP.parse("198.51.100.0/24", 24, 64497)

    async def run():
        primary_data, backup_data = CacheState(), CacheState()
        primary_data.set_data({a})
        backup_data.set_data({a, b})
        primary = RTRServer(primary_data, "127.0.0.1", 0, on_event=lambda ev: None)
        backup = RTRServer(backup_data, "127.0.0.1", 0, on_event=lambda ev: None)
        await primary.start()
        await backup.start()
        store = VRPStore()
        c1 = RTRClient("127.0.0.1", primary.port, store, source="primary", max_backoff=0.3)
        c2 = RTRClient("127.0.0.1", backup.port, store, source="backup", max_backoff=0.3)
        c1.preference, c2.preference = 1, 2
        switches: list[tuple[str, bool]] = []
        mgr = RTRManager(store, [c1, c2], on_switch=lambda c, on: switches.append((c.source, on)))
        task = asyncio.ensure_future(mgr.run())
        states: list[str] = []

        async def sample():  # validate all the time: the verdict must never lapse
            while True:
                states.append(str(validate(store, "192.0.2.0/24", 64496).state))
                await asyncio.sleep(0.01)

        async def until(cond, what, timeout=15.0):
            end = asyncio.get_running_loop().time() + timeout
            while not cond():
                assert asyncio.get_running_loop().time() < end, what
                await asyncio.sleep(0.02)

        await until(lambda: c1.healthy, "primary in sync")
        sampler = asyncio.ensure_future(sample())
        await asyncio.sleep(0.5)
        phase = {"start": (c1.connected, c2.connected, set(store.iter_vrps()))}
        await primary.stop()  # the preferred cache is lost
        await until(lambda: c2.healthy, "backup takes over")
        phase["failover"] = (c1.connected, c2.connected, set(store.iter_vrps()))
        await primary.start()  # it is back (same port)
        await until(lambda: c1.healthy and not c2.connected, "primary back, backup standing by")
        phase["return"] = (c1.connected, c2.connected, set(store.iter_vrps()))
        sampler.cancel()
        mgr.stop()
        await task
        await primary.close()
        await backup.close()
        return phase, states, switches

    phase, states, switches = asyncio.run(run())
    assert phase["start"] == (True, False, {a})  # only the preferred cache serves
    # the backup serves; the primary's data is kept until its own expire: union of both
    assert phase["failover"] == (False, True, {a, b})
    assert phase["return"][:2] == (True, False)
    assert len(states) > 50 and set(states) == {"valid"}  # never a moment without the VRP
    assert switches[:3] == [("backup", False), ("backup", True), ("backup", False)]
