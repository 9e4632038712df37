"""The injected clocks of the core's timers outside the RTR sessions: failover arbitration
between caches (RTRManager) and the lab's waits, driven by a fake monotonic clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rov_router.lab.runner import Lab
from rov_router.lab.scenario import load_scenario
from rov_router.rpki.store import VRPStore
from rov_router.rtr.client import RTRManager

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


class FakeClock:
    def __init__(self, t: float = 500.0, step: float = 0.0) -> None:
        self.t = t
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


class FakeClient:
    """What RTRManager reads and calls on an RTRClient."""

    def __init__(self, source: str, preference: int, healthy: bool = False) -> None:
        self.source = source
        self.preference = preference
        self.healthy = healthy
        self.enabled = True

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled


def test_failover_waits_the_grace_on_the_injected_clock():
    clock = FakeClock()
    primary, backup = FakeClient("primary", 1), FakeClient("backup", 2)
    switches: list[tuple[str, bool]] = []
    mgr = RTRManager(
        VRPStore(),
        [primary, backup],  # type: ignore[list-item]
        grace=2.0,
        clock=clock,
        on_switch=lambda c, on: switches.append((c.source, on)),
    )
    assert primary.enabled and not backup.enabled  # start-up: only the preferred level
    clock.t += 1.9
    mgr.arbitrate()
    assert not backup.enabled  # still within the grace
    clock.t += 0.2
    mgr.arbitrate()
    assert backup.enabled  # the preferred cache has been out of sync for 2.1 s
    primary.healthy = True
    mgr.arbitrate()
    assert not backup.enabled
    assert switches == [("backup", False), ("backup", True), ("backup", False)]


def test_the_lab_gives_up_waiting_by_its_injected_clock():
    sc = load_scenario(TOPOLOGIES / "origin-hijack.toml")
    lab = Lab(sc, display="quiet", clock=FakeClock(step=20.0))

    async def go() -> None:
        try:
            with pytest.raises(TimeoutError, match="router not ready within 30 s"):
                await asyncio.wait_for(lab._until(lambda: False, 30.0, "router"), 5.0)
        finally:
            await lab.close()

    asyncio.run(go())
