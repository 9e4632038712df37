"""pytest fixtures shared by every test directory; the helpers themselves are in tests/support."""

from __future__ import annotations

import pytest

from tests.support.peers import StayRTR


@pytest.fixture
def stayrtr(tmp_path):
    started: list[StayRTR] = []

    def start(vrp_file, **kw) -> StayRTR:
        s = StayRTR(vrp_file, tmp_path, **kw)
        started.append(s)
        return s.start()

    yield start
    for s in reversed(started):
        s.stop()
