"""The ExaBGP codec, the config loader and the router core, without sockets: real ExaBGP JSON
lines in (tests/data/exabgp), commands out."""

from __future__ import annotations

import pytest

from rov_router.bgp import exabgp as X
from rov_router.config import ConfigError, load_config
from rov_router.policy import rfc8097_community
from rov_router.router import RouterCore
from rov_router.rpki.store import Update
from rov_router.rpki.vrp import VRP, VRPBatch
from tests.support.core import GOOD, announce, core, msg, up, withdraw
from tests.support.env import DATA

SAMPLES = DATA / "exabgp"


def sample_lines(name: str) -> list[str]:
    return (SAMPLES / name).read_text().splitlines()


def test_every_sample_line_parses():
    for f in SAMPLES.glob("*.json"):
        for line in f.read_text().splitlines():
            X.parse_line(line)  # no LineError on anything ExaBGP really wrote


def test_update_fields():
    (first, *_) = [X.parse_line(x) for x in sample_lines("update-ipv4-announce.json")]
    assert isinstance(first, X.Update) and first.peer == "127.0.0.2"
    assert [p for _f, p, _a in first.announced] == [
        "198.18.0.0/15",
        "192.0.2.0/25",
        "192.0.2.128/25",
    ]
    a = first.announced[0][2]
    assert a.next_hop == "127.0.0.2" and a.med == 10 and a.origin_as() == 64496
    assert a.communities == ((65001, 100), (65001, 200)) and a.large_communities == ((65001, 1, 2),)
    assert all(x[2] is a for x in first.announced)  # one Attributes object per UPDATE
    as_set = X.parse_line(sample_lines("update-as-set.json")[0])
    attrs = as_set.announced[0][2]
    assert attrs.origin_as() is None and attrs.path_length == 3
    assert attrs.path_str() == "65001 64500 {64501,64502,4200000009}"


def test_other_message_kinds():
    kinds = {type(X.parse_line(x)).__name__ for x in sample_lines("peer-down.json")}
    assert kinds >= {"PeerState", "Notification", "Shutdown"}
    assert isinstance(X.parse_line(sample_lines("eor.json")[0]), X.EndOfRib)
    assert X.parse_line("done").ok and not X.parse_line("error").ok
    compact = X.parse_line(sample_lines("update-compact-mode.json")[0])
    assert [p for _f, p, _a in compact.announced][:1] == ["198.18.0.0/15"]


@pytest.mark.parametrize("line", ['{"type": "update", "neighbor"', '{"type": "state"}', "{[]}"])
def test_garbage_lines_raise_line_error_with_the_line(line):
    with pytest.raises(X.LineError) as e:
        X.parse_line(line)
    assert e.value.line == line


def test_attributes_text_prepends_our_as_and_keeps_the_set():
    attrs = X.parse_line(sample_lines("update-as-set.json")[0]).announced[0][2]
    text = X.attributes_text(
        attrs,
        next_hop="self",
        local_as=65000,
        extra_ext_communities=(rfc8097_community("invalid"),),
    )
    assert "as-path [ 65000 65001 64500 ] ( 64501 64502 4200000009 )" in text
    assert "origin incomplete" in text and "atomic-aggregate" in text
    assert "extended-community [ 0x4300000000000002 ]" in text


# ---- config ------------------------------------------------------------------------------------


def test_config_defaults(tmp_path):
    (tmp_path / "v.json").write_text('{"roas": []}')
    p = tmp_path / "r.toml"
    p.write_text(GOOD)
    c = load_config(p)
    up, down = c.neighbors
    assert (up.role, up.policy, up.passive) == ("upstream", "drop-invalid", True)
    assert (down.role, down.passive, down.port) == ("downstream", False, 1799)
    assert c.rpki[0].vrps == (tmp_path / "v.json").resolve()


@pytest.mark.parametrize(
    "edit,where,message",
    [
        (
            ('role = "downstream"', 'role = "downstrem"'),
            ":13: neighbor[1].role",
            "'downstrem' is not one of",
        ),
        (("asn = 65009", "asn = 0"), ":12: neighbor[1].asn", "ASN 0 outside"),
        (
            ('address = "127.0.0.2"', 'address = "127.0.0.300"'),
            ":7: neighbor[0].address",
            "not an IP address",
        ),
        (("port = 1799", "port = 1799\ncolour = 1"), ":15: neighbor[1].colour", "unknown key"),
        (('vrps = "v.json"', 'vrps = "missing.json"'), ":17: rpki[0].vrps", "no such file"),
        (("asn = 65000", "asn = 65000 x"), ":3:", "not valid TOML"),
    ],
)
def test_config_errors_name_file_line_and_key(tmp_path, edit, where, message):
    (tmp_path / "v.json").write_text('{"roas": []}')
    p = tmp_path / "r.toml"
    p.write_text(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}{where}" in str(e.value) and message in str(e.value)


# ---- router core -------------------------------------------------------------------------------


def test_drop_invalid_and_batched_downstream_commands(tmp_path):
    c, _ = core(tmp_path)
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    for line in (
        announce("192.0.2.0/24", [65001, 64496]),
        announce("198.51.100.0/24", [65001, 64499]),
        announce("11.0.0.0/8", [65001, 65005]),
        announce("2001:db8:abcd::/48", [65001, 64496], "2001:db8::2"),
    ):
        c.feed_line(line)
    cmds = c.commands()
    assert cmds == [
        "neighbor 127.0.0.9 announce attributes next-hop self origin igp as-path [ 65000 65001 65005 ] nlri 11.0.0.0/8",
        "neighbor 127.0.0.9 announce attributes next-hop self origin igp as-path [ 65000 65001 64496 ] nlri 192.0.2.0/24",
        "neighbor 127.0.0.9 announce attributes next-hop ::ffff:127.0.0.1 origin igp as-path [ 65000 65001 64496 ] nlri 2001:db8:abcd::/48",
    ]
    assert c.commands() == []  # nothing changed
    c.feed_line(withdraw("192.0.2.0/24"))
    c.feed_line(withdraw("10.99.0.0/16"))  # never announced: a no-op
    assert c.commands() == [
        "neighbor 127.0.0.9 withdraw attributes next-hop self nlri 192.0.2.0/24"
    ]


def test_withdrawals_are_batched_like_announcements(tmp_path):
    """A lost full-table feeder: its routes leave downstream in batches of BATCH prefixes
    per command (one command per prefix made withdrawals 3x slower than announcements)."""
    from rov_router.router import BATCH

    c, _ = core(tmp_path, policy="accept-all")
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    n = 2 * BATCH + 7
    prefixes = [f"10.{i >> 8}.{i & 255}.0/24" for i in range(n)]
    for p in prefixes:
        c.feed_line(announce(p, [65001, 65005]))
    c.feed_line(announce("2001:db8:abcd::/48", [65001, 64496], "2001:db8::2"))
    assert c.commands()
    c.feed_line(msg("state", state="down", reason="peer reset"))
    cmds = c.commands()
    v4 = [x for x in cmds if "next-hop self" in x]
    assert len(v4) == 3 and all(x.startswith("neighbor 127.0.0.9 withdraw attributes") for x in v4)
    assert sorted(p for x in v4 for p in x.split(" nlri ")[1].split()) == sorted(prefixes)
    # the IPv6 route is withdrawn with the next hop it was announced with (ExaBGP refuses next-hop self for IPv6 on an IPv4 session)
    assert [x for x in cmds if x not in v4] == [
        "neighbor 127.0.0.9 withdraw attributes next-hop ::ffff:127.0.0.1 nlri 2001:db8:abcd::/48"
    ]


def test_nothing_per_route_that_could_be_shared(tmp_path):
    """Memory per route on a full table: the Adj-RIB-In is keyed by the route's own prefix
    string (no key object per route), routes share one string per validation state, and a
    prefix with one route holds it in a one-item tuple."""
    c, _ = core(tmp_path)
    up(c, "127.0.0.2")
    c.feed_line(announce("11.0.0.0/8", [65001, 65005]))
    c.feed_line(announce("12.0.0.0/8", [65001, 65006]))
    p = c.peers["127.0.0.2"]
    (k1, r1), (k2, r2) = p.adj_in.items()
    assert k1 is r1.prefix and k2 is r2.prefix
    assert r1.state == "not-found" and r1.state is r2.state
    e = c.rib.entry(r1.addr, r1.plen)
    assert e is not None and e.routes == (r1,)
    c.feed_line(withdraw("11.0.0.0/8"))
    c.commands()
    assert list(p.adj_in) == ["12.0.0.0/8"] and c.rib.entry(r1.addr, r1.plen) is None


def test_attribute_sets_are_shared_without_keeping_every_text():
    """One Attributes object per distinct attribute set for the whole table, while only the
    recent JSON texts (which cost more than the objects) are kept to skip decoding."""

    def attrs(*path: int) -> dict:
        return {"origin": "igp", "as-path": {"0": {"element": "as-sequence", "value": list(path)}}}

    first = X.interned_attributes("127.0.0.2", attrs(65001, 64496))
    for i in range(X.TEXT_MAX + 10):
        X.interned_attributes("127.0.0.2", attrs(65001, 1000 + i))
    assert len(X._BY_TEXT) <= X.TEXT_MAX
    again = X.interned_attributes("127.0.0.2", attrs(65001, 64496))
    assert again is first
    assert X.interned_attributes("127.0.0.3", attrs(65001, 64496)) is not first


def test_revalidation_flips_routes_and_downstream(tmp_path):
    c, store = core(tmp_path)
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    c.feed_line(announce("198.51.100.0/24", [65001, 64499]))
    c.feed_line(announce("192.0.2.0/24", [65001, 64496]))
    c.commands()
    u = Update("f", False)
    u.vrps = VRPBatch(
        [
            (True, VRP.parse("198.51.100.0/24", 24, 64499)),
            (True, VRP.parse("192.0.2.0/24", 24, 0)),
            (False, VRP.parse("192.0.2.0/24", 24, 64496)),
        ]
    )
    changes = store.apply(u)
    assert c.on_vrp_changes(changes) == 2  # only the two routes under the changed prefixes
    assert sorted(c.commands()) == [
        "neighbor 127.0.0.9 announce attributes next-hop self origin igp as-path [ 65000 65001 64499 ] nlri 198.51.100.0/24",
        "neighbor 127.0.0.9 withdraw attributes next-hop self nlri 192.0.2.0/24",
    ]


def test_revalidation_evaluates_in_full_only_routes_whose_verdict_changes(tmp_path):
    """A VRP delta redoes origin validation for every route under a changed prefix, but the
    policy / ASPA evaluation only where the verdict moved; the outcome equals a router that
    evaluated everything afresh with the new VRPs."""
    c, store = core(tmp_path)
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    routes = [(f"192.0.2.{i * 16}/28", 64496 if i % 2 else 64499) for i in range(16)]
    for prefix, origin in routes:
        c.feed_line(announce(prefix, [65001, origin]))
    c.commands()
    assert sum(r.state == "invalid" for r in c.routes()) == 16  # 192.0.2.0/24-24 AS64496
    u = Update("f", False)  # 192.0.2.0/24-28 AS64496 covers all 16: the AS64496 half valid
    u.vrps = VRPBatch([(True, VRP.parse("192.0.2.0/24", 28, 64496))])
    n0, e0 = c.stats.revalidated_routes, c.stats.reevaluated_routes
    assert c.on_vrp_changes(store.apply(u)) == 16
    assert c.stats.revalidated_routes - n0 == 16 and c.stats.reevaluated_routes - e0 == 8
    assert len(announced(c.commands())) == 8
    u = Update("f", False)  # a second VRP for AS64496 on a /25: no verdict changes
    u.vrps = VRPBatch([(True, VRP.parse("192.0.2.0/25", 28, 64496))])
    n0, e0 = c.stats.revalidated_routes, c.stats.reevaluated_routes
    assert c.on_vrp_changes(store.apply(u)) == 8
    assert c.stats.revalidated_routes - n0 == 8 and c.stats.reevaluated_routes - e0 == 0
    assert c.commands() == []
    u = Update("f", False)  # AS64499 on the upper /25: 4 routes turn valid, nothing else
    u.vrps = VRPBatch([(True, VRP.parse("192.0.2.128/25", 28, 64499))])
    e0 = c.stats.reevaluated_routes
    assert c.on_vrp_changes(store.apply(u)) == 8
    assert c.stats.reevaluated_routes - e0 == 4
    fresh, fresh_store = core(tmp_path)
    fresh_store.replace("f", store.iter_vrps("f"))
    up(fresh, "127.0.0.9")
    up(fresh, "127.0.0.2")
    for prefix, origin in routes:
        fresh.feed_line(announce(prefix, [65001, origin]))

    def seen(x: RouterCore) -> list:
        return sorted(
            (r.prefix, r.state, r.accepted, r.action, r.local_pref, r.aspa_state)
            for r in x.routes()
        )

    assert seen(c) == seen(fresh)
    assert sum(r.state == "valid" for r in c.routes()) == 12
    assert announced(c.commands()) == sorted(f"192.0.2.{i * 16}/28" for i in range(8, 16, 2))


def announced(cmds: list[str]) -> list[str]:
    return sorted(p for x in cmds if " announce " in x for p in x.split(" nlri ")[1].split())


def test_peer_down_withdraws_its_routes_and_best_path_falls_back(tmp_path):
    extra = '\n[[neighbor]]\naddress = "127.0.0.3"\nasn = 65003\n'
    c, _ = core(tmp_path, extra=extra)
    for p in ("127.0.0.9", "127.0.0.2", "127.0.0.3"):
        up(c, p)
    c.feed_line(announce("11.0.0.0/8", [65001, 65005]))
    c.feed_line(
        msg(
            "update",
            peer="127.0.0.3",
            direction="receive",
            message={
                "update": {
                    "attribute": {
                        "origin": "igp",
                        "as-path": {
                            "0": {"element": "as-sequence", "value": [65003, 65100, 65005]}
                        },
                    },
                    "announce": {"ipv4 unicast": {"127.0.0.3": [{"nlri": "11.0.0.0/8"}]}},
                }
            },
        )
    )
    assert c.commands()[0].endswith("as-path [ 65000 65001 65005 ] nlri 11.0.0.0/8")  # shorter path
    c.feed_line(msg("state", state="down", reason="closing connection"))
    assert c.commands()[0].endswith("as-path [ 65000 65003 65100 65005 ] nlri 11.0.0.0/8")
    c.feed_line(msg("state", peer="127.0.0.3", state="down", reason="closing connection"))
    assert c.commands() == ["neighbor 127.0.0.9 withdraw attributes next-hop self nlri 11.0.0.0/8"]


@pytest.mark.parametrize(
    "policy,accepted,lp,ext",
    [
        ("depref-invalid", True, 50, ()),
        ("tag", True, 100, ("0x4300000000000002",)),
        ("accept-all", True, 100, ()),
        ("drop-invalid", False, 100, ()),
    ],
)
def test_policies(tmp_path, policy, accepted, lp, ext):
    c, _ = core(tmp_path, policy)
    up(c, "127.0.0.2")
    c.feed_line(announce("198.51.100.0/24", [65001, 64499]))
    (r,) = c.routes()
    assert (r.state, r.accepted, r.local_pref, r.ext_communities) == ("invalid", accepted, lp, ext)


def test_downstream_reconnect_replays_the_table(tmp_path):
    c, _ = core(tmp_path)
    up(c, "127.0.0.2")
    c.feed_line(announce("11.0.0.0/8", [65001, 65005]))
    assert c.commands() == []  # downstream not up yet
    up(c, "127.0.0.9")
    assert len(c.commands()) == 1
    c.feed_line(msg("state", peer="127.0.0.9", state="down", reason="x"))
    up(c, "127.0.0.9")
    assert c.commands() == [
        "neighbor 127.0.0.9 announce attributes next-hop self origin igp as-path [ 65000 65001 65005 ] nlri 11.0.0.0/8"
    ]


def test_unparsable_lines_are_counted_never_fatal(tmp_path):
    c, _ = core(tmp_path)
    c.feed_line("{garbage")
    c.feed_line(msg("state", peer="10.9.9.9", state="up"))  # not configured
    c.feed_line("done")
    assert c.stats.unparsed == 2 and "garbage" in c.stats.last_unparsed[0]
