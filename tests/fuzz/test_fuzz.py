"""Short seeded fuzz runs (CI): the RTR decoder, the client session + store, the cache's router
session.  The long run (>= 1M inputs) is ``python benchmarks/fuzz_rtr.py``."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import TARGETS, run

SHORT = {"decode": 200_000, "client": 30_000, "cache": 60_000}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_short_seeded_fuzz_run_has_no_escapes_or_hangs(target):
    res = run(target, SHORT[target], seed=20261202)
    assert res.inputs == SHORT[target]
    assert res.escapes == 0, "\n".join(res.examples)
    assert res.hangs == 0, f"slowest input {res.slowest:.2f} s"
