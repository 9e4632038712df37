"""The router core keeps going: a route whose downstream command cannot be built does not block
the others, and bad lines are logged in full only up to a limit, then counted."""

from __future__ import annotations

import json
import logging

from rov_router import router as R
from rov_router.bgp import exabgp as X
from rov_router.router import RouterCore
from rov_router.rpki.store import VRPStore
from tests.support.core import FUZZ_CONFIG as CONFIG
from tests.support.core import load_config_text

UP = '{"type": "state", "neighbor": {"address": {"peer": "%s"}, "state": "up"}}'


def _core() -> RouterCore:
    core = RouterCore(load_config_text(CONFIG), VRPStore())
    core.feed_line(UP % "127.0.0.9")
    core.feed_line(UP % "127.0.0.2")
    return core


def _attrs(**kw) -> X.Attributes:
    return X.Attributes(next_hop="127.0.0.2", as_path=(("sequence", (65001, 64496)),), **kw)


def test_a_route_whose_command_cannot_be_built_does_not_block_the_others():
    core = _core()
    bad = _attrs(communities=((65001,),))  # what the codec now refuses; here it got through
    core.handle(X.Update("127.0.0.2", 65001, announced=[("ipv4 unicast", "11.0.0.0/8", bad)]))
    core.handle(X.Update("127.0.0.2", 65001, announced=[("ipv4 unicast", "12.0.0.0/8", _attrs())]))
    cmds = core.commands()
    assert [c.split(" nlri ")[1] for c in cmds] == ["12.0.0.0/8"]
    assert core.stats.export_errors == 1
    core.handle(X.Update("127.0.0.2", 65001, announced=[("ipv4 unicast", "13.0.0.0/8", _attrs())]))
    assert [c.split(" nlri ")[1] for c in core.commands()] == ["13.0.0.0/8"]  # nothing stuck
    assert core.stats.export_errors == 1


def test_bad_lines_are_logged_in_full_up_to_a_limit_then_counted(caplog):
    core = _core()
    events = []
    core.listeners.append(events.append)
    n = R.LOG_FIRST + 5
    with caplog.at_level(logging.WARNING, logger="rov_router.router"):
        for i in range(n):
            core.feed_line(json.dumps({"type": "update", "neighbor": {"address": {"peer": i}}}))
    assert core.stats.unparsed == n
    full = [r for r in caplog.records if "neighbor.address.peer: expected a string" in r.message]
    assert len(full) == R.LOG_FIRST
    assert any("further ones are only counted" in r.message for r in caplog.records)
    assert len([e for e in events if getattr(e, "state", "") == "unparsed"]) == R.LOG_FIRST
