"""Seeded fuzzing of the ExaBGP codec + router core with mutated real ExaBGP lines.

Every mutated line is followed by a valid UPDATE announcing a fresh prefix.  Whatever the
mutated line contains, no exception may escape ``RouterCore.feed_line`` / ``commands()``, the
counters must add up, and every one of the valid prefixes must reach the downstream neighbor.
``ROV_FUZZ_LINES`` raises the count for a longer run (the default keeps CI short).
"""

from __future__ import annotations

import copy
import json
import os
import random

from rov_router.bgp import exabgp as X
from rov_router.router import RouterCore
from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP, parse_prefix
from tests.support.core import FUZZ_CONFIG as CONFIG
from tests.support.core import load_config_text
from tests.support.env import DATA

SAMPLES = sorted((DATA / "exabgp").glob("*.json"))
LINES = int(os.environ.get("ROV_FUZZ_LINES", "3000"))
SEED = int(os.environ.get("ROV_FUZZ_SEED", "11"))

#: values a mutation puts in place of a node: every JSON type, and shapes seen to break things
ODD = [
    None,
    True,
    False,
    0,
    -1,
    123,
    2**40,
    1.5,
    "",
    "x",
    "192.0.2.0/24",
    "::/0",
    "10.0.0.0/33",
    [],
    [[]],
    [[65001]],
    [[65001, "x"]],
    [[1, 2, 3, 4]],
    [1, 2],
    ["a"],
    {},
    {"nlri": 123},
    {"0": {"element": 1, "value": [1]}},
    {"0": {"element": "as-sequence", "value": ["x"]}},
    {"x": {"element": "as-set", "value": [1]}},
    {"nlri": ["192.0.2.0/24"]},
    {"127.0.0.2": 5},
]


def _valid_update(i: int) -> tuple[str, str]:
    prefix = f"{10 + (i >> 16)}.{i >> 8 & 255}.{i & 255}.0/24"
    line = json.dumps(
        {
            "exabgp": "5.0.0",
            "type": "update",
            "neighbor": {
                "address": {"local": "127.0.0.1", "peer": "127.0.0.2"},
                "asn": {"local": 65000, "peer": 65001},
                "direction": "receive",
                "message": {
                    "update": {
                        "attribute": {
                            "origin": "igp",
                            "as-path": {"0": {"element": "as-sequence", "value": [65001, 64496]}},
                            "med": 10,
                            "community": [[65001, 100]],
                        },
                        "announce": {"ipv4 unicast": {"127.0.0.2": [{"nlri": prefix}]}},
                    }
                },
            },
        }
    )
    return prefix, line


def _nodes(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nodes(v, (*path, i))


def _mutate(rng: random.Random, line: str) -> str:
    """One structural mutation of a JSON line (replace / delete / duplicate a node), or a byte
    level one (flip, cut, splice) now and then."""
    if rng.random() < 0.15:
        b = bytearray(line.encode())
        op = rng.randrange(3)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b = b[: rng.randrange(len(b) + 1)]
        else:
            j = rng.randrange(len(b) + 1)
            b[j:j] = rng.choice([b"{", b"]", b'"', b"\\u0000", b"\xff\xfe"])
        return b.decode("utf-8", "replace").replace("\n", " ")
    doc = json.loads(line)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = [p for p in _nodes(doc) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        op = rng.random()
        if op < 0.6:
            parent[key] = copy.deepcopy(rng.choice(ODD))
        elif op < 0.75:
            del parent[key]
        elif op < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["nlri", "peer", "x", "origin", "value"])] = copy.deepcopy(
                rng.choice(ODD)
            )
        else:
            parent[key] = copy.deepcopy(parent[key])  # harmless: an unchanged copy
    return json.dumps(doc)


def _core() -> RouterCore:
    store = VRPStore()
    addr, plen = parse_prefix("10.0.0.0/8")
    store.replace("fuzz", [VRP(addr, plen, 24, 64496)])
    return RouterCore(load_config_text(CONFIG), store)


def test_mutated_exabgp_lines_never_escape_and_valid_lines_in_between_are_advertised():
    rng = random.Random(SEED)
    samples = [x for f in SAMPLES for x in f.read_text().splitlines() if x.startswith("{")]
    core = _core()
    up = '{"type": "state", "neighbor": {"address": {"peer": "%s"}, "state": "up"}}'
    core.feed_line(up % "127.0.0.9")
    core.feed_line(up % "127.0.0.2")
    escapes: list[str] = []
    advertised: set[str] = set()
    expected: set[str] = set()
    rejected = 0
    fed = 2
    for i in range(LINES):
        bad = _mutate(rng, rng.choice(samples))
        try:
            X.parse_line(bad)
        except X.LineError:
            rejected += 1
        try:
            core.feed_line(bad)
            fed += 1
            for c in core.commands():
                if c.startswith("neighbor 127.0.0.9 announce"):
                    advertised.update(c.split(" nlri ", 1)[1].split())
        except Exception as e:  # the point of the test
            escapes.append(f"{type(e).__name__}: {e}: {bad[:300]}")
            continue
        core.feed_line(up % "127.0.0.9")  # a mutated line may have taken a neighbor down
        core.feed_line(up % "127.0.0.2")
        prefix, good = _valid_update(i)
        core.feed_line(good)
        fed += 3
        expected.add(prefix)
        for c in core.commands():
            if c.startswith("neighbor 127.0.0.9 announce"):
                advertised.update(c.split(" nlri ", 1)[1].split())
    print(
        f"fuzz: {LINES} mutated lines (seed {SEED}): {rejected} rejected by the codec, "
        f"{core.stats.unparsed} counted unparsable, {core.stats.internal_errors} internal "
        f"errors, {len(escapes)} escaped; {len(expected & advertised)} of {len(expected)} "
        "valid prefixes in between advertised"
    )
    assert not escapes, f"{len(escapes)} of {LINES} escaped, e.g. {escapes[:5]}"
    assert core.stats.lines == fed
    assert core.stats.unparsed >= rejected > 0
    assert core.stats.internal_errors == 0
    # a mutated line may withdraw one of our prefixes or take the upstream down (flushing its
    # routes) before it was advertised; each prefix must still have been advertised once
    missing = expected - advertised
    assert not missing, (
        f"{len(missing)} valid prefixes never advertised, e.g. {sorted(missing)[:5]}"
    )
