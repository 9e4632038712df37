"""Re-advertised attributes as a transparent eBGP router passes them on, next hops per neighbor,
RFC 8097 tagging inside the AS only, the start-up hold, and one attribute text per UPDATE."""

from __future__ import annotations

import json
import time

import pytest

from rov_router.bgp import exabgp as X
from rov_router.config import ConfigError, load_config
from rov_router.router import HELD, RouterCore
from tests.support.core import GOOD, make_core, msg, up

# what ExaBGP 5.0.15 really wrote for these attributes (receiving from another ExaBGP / GoBGP)
RICH = {
    "origin": "incomplete",
    "as-path": {
        "0": {"element": "as-sequence", "value": [65001, 101, 47065]},
        "1": {"element": "as-set", "value": [61575]},
        "2": {"element": "as-sequence", "value": [47065]},
    },
    "med": 50,
    "community": [[1, 2]],
    "extended-community": [
        {"value": 839975344013412, "string": "target:64500:100"},
        {"value": 4827858800541171714, "string": ""},
        {"value": 0x4000FDE800000001, "string": ""},
    ],
    "large-community": [[1, 2, 3]],
    "atomic-aggregate": True,
    "aggregator": "64500:192.0.2.1",
    "attribute-0xF0-0xE0": "0x01020304",
}


def rich_update(prefixes: list[str], attrs: dict = RICH, peer: str = "127.0.0.2") -> str:
    return msg(
        "update",
        peer=peer,
        direction="receive",
        message={
            "update": {
                "attribute": attrs,
                "announce": {"ipv4 unicast": {"127.0.0.2": [{"nlri": p} for p in prefixes]}},
            }
        },
    )


def core(tmp_path, up_extra: str = "", down_extra: str = "", text: str = GOOD) -> RouterCore:
    c, _ = make_core(tmp_path, up_extra=up_extra, down_extra=down_extra, text=text)
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    return c


def test_as_set_in_the_middle_of_the_path_is_kept():
    """The issue's repro: the set used to be flattened into the sequence."""
    a = X.Attributes(
        next_hop="127.0.0.2",
        as_path=(("sequence", (4200000711, 101, 47065)), ("set", (61575,)), ("sequence", (47065,))),
    )
    text = X.attributes_text(a, next_hop="self", local_as=4200000701)
    assert "as-path [ 4200000701 4200000711 101 47065 ] ( 61575 ) [ 47065 ] " in text + " "


@pytest.mark.parametrize(
    "path,want",
    [
        ((("set", (1, 2)),), "as-path [ 65000 ] ( 1 2 )"),
        ((), "as-path [ 65000 ]"),
        ((("sequence", (1,)), ("set", (2, 3))), "as-path [ 65000 1 ] ( 2 3 )"),
        ((("confed-sequence", (7,)), ("sequence", (1,))), "as-path [ 65000 1 ]"),
    ],
)
def test_as_path_text_every_segment(path, want):
    assert X.as_path_text(path, 65000) == want


def test_every_transparent_attribute_is_passed_on(tmp_path):
    c = core(tmp_path)
    c.feed_line(rich_update(["11.0.0.0/8"]))
    (cmd,) = c.commands()
    assert cmd == (
        "neighbor 127.0.0.9 announce attributes next-hop self origin incomplete "
        "as-path [ 65000 65001 101 47065 ] ( 61575 ) [ 47065 ] med 50 community [ 1:2 ] "
        "large-community [ 1:2:3 ] extended-community [ 0x0002fbf400000064 ] "
        "atomic-aggregate aggregator ( 64500:192.0.2.1 ) attribute [ 0xf0 0xe0 0x01020304 ] "
        "nlri 11.0.0.0/8"
    )  # 0x43.. (RFC 8097) and 0x40.. (non-transitive) are not sent to an eBGP neighbor


@pytest.mark.parametrize("med,want", [('"remove"', ""), ("7", " med 7"), ('"keep"', " med 50")])
def test_med_per_neighbor(tmp_path, med, want):
    c = core(tmp_path, down_extra=f"\nmed = {med}")
    c.feed_line(rich_update(["11.0.0.0/8"]))
    (cmd,) = c.commands()
    assert f"( 61575 ) [ 47065 ]{want} community" in cmd


def test_attribute_text_is_rendered_once_per_update(tmp_path):
    """One UPDATE with a 4,000-AS path and 12,000 prefixes: one text, shared by every prefix
    (it was rendered once per prefix, 11 s and 324 MB for that UPDATE)."""
    c = core(tmp_path)
    attrs = dict(
        RICH, **{"as-path": {"0": {"element": "as-sequence", "value": list(range(1, 4001))}}}
    )
    prefixes = [f"20.{i // 256}.{i % 256}.0/24" for i in range(12_000)]
    c.feed_line(rich_update(prefixes, attrs))
    t0 = time.perf_counter()
    cmds = c.commands()
    took = time.perf_counter() - t0
    assert c.texts_rendered == 1
    assert len(cmds) == 120 and all(" 4000 " in x for x in cmds)
    print(f"12,000 prefixes x 4,000-AS path: commands() {took:.2f} s, 1 attribute text")


NEXT_HOP_CASES = [
    ("", "next-hop self"),
    ('\nnext_hop = "keep"', "next-hop 127.0.0.2"),
    ('\nnext_hop = "192.0.2.254"', "next-hop 192.0.2.254"),
]


@pytest.mark.parametrize("extra,want", NEXT_HOP_CASES)
def test_ipv4_next_hop_per_neighbor(tmp_path, extra, want):
    c = core(tmp_path, down_extra=extra)
    c.feed_line(rich_update(["11.0.0.0/8"]))
    (cmd,) = c.commands()
    assert f"attributes {want} origin" in cmd


def test_next_hop_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"neighbor\[1\].next_hop: 'selff' is not an IP"):
        core(tmp_path, down_extra='\nnext_hop = "selff"')
    with pytest.raises(ConfigError, match=r"neighbor\[1\].med: expected keep, remove"):
        core(tmp_path, down_extra='\nmed = "drop"')
    with pytest.raises(ConfigError, match=r"tag_communities: invalid = '1:x'"):
        core(
            tmp_path,
            up_extra='\ntag_communities = { valid = "1:1", not-found = "1:2", invalid = "1:x" }',
        )


IBGP = GOOD.replace("asn = 65009", "asn = 65000")


def test_rfc8097_only_towards_ibgp(tmp_path):
    ibgp = core(tmp_path, up_extra='\npolicy = "tag"', text=IBGP)
    ibgp.feed_line(rich_update(["198.51.100.0/24"]))  # invalid
    (cmd,) = ibgp.commands()
    # iBGP: no prepend, local-pref, non-transitive kept, the received 0x43 replaced by ours
    assert "as-path [ 65001 101 47065 ] ( 61575 ) [ 47065 ]" in cmd
    assert "local-preference 100" in cmd
    assert "extended-community [ 0x0002fbf400000064 0x4000fde800000001 0x4300000000000002 ]" in cmd
    ebgp = core(tmp_path, up_extra='\npolicy = "tag"')
    ebgp.feed_line(rich_update(["198.51.100.0/24"]))
    (cmd,) = ebgp.commands()
    assert "0x43" not in cmd and "local-preference" not in cmd
    assert "large-community [ 1:2:3 65000:0:2 ]" in cmd  # default: LOCAL_AS:0:state


def test_ebgp_tag_with_configured_standard_communities(tmp_path):
    tags = (
        '\ntag_communities = { valid = "65000:10", not-found = "65000:11", invalid = "65000:12" }'
    )
    c = core(tmp_path, up_extra='\npolicy = "tag"' + tags)
    c.feed_line(rich_update(["198.51.100.0/24"]))
    c.feed_line(
        rich_update(
            ["192.0.2.0/24"],
            dict(RICH, **{"as-path": {"0": {"element": "as-sequence", "value": [65001, 64496]}}}),
        )
    )
    cmds = {x.rsplit(" ", 1)[1]: x for x in c.commands()}
    assert "community [ 1:2 65000:12 ]" in cmds["198.51.100.0/24"]  # invalid
    assert "community [ 1:2 65000:10 ]" in cmds["192.0.2.0/24"]  # valid


def test_routes_are_held_until_release(tmp_path):
    c = core(tmp_path)
    c.hold()
    c.feed_line(rich_update(["11.0.0.0/8", "198.51.100.0/24"]))
    assert c.commands() == []
    assert {r.action for r in c.routes()} == {HELD}
    assert c.peers["127.0.0.2"].counts()["held"] == 2
    assert c.release() == 2
    (cmd,) = c.commands()
    assert cmd.endswith("nlri 11.0.0.0/8")  # the invalid one stays dropped
    assert {r.action for r in c.routes()} == {"accept", "drop"}


def test_generic_attribute_json_is_checked():
    bad = json.loads(rich_update(["11.0.0.0/8"]))
    bad["neighbor"]["message"]["update"]["attribute"]["attribute-0xF0-0xE0"] = "0xzz"
    with pytest.raises(X.LineError):
        X.parse_line(json.dumps(bad))


def test_reconfigure_policies_and_neighbors_in_place(tmp_path):
    c = core(tmp_path)
    c.feed_line(rich_update(["11.0.0.0/8", "198.51.100.0/24"]))  # not-found, invalid
    assert [x.rsplit(" ", 1)[1] for x in c.commands()] == ["11.0.0.0/8"]
    up_peer = c.peers["127.0.0.2"]
    # policy change on the upstream: the invalid route is now announced, nothing withdrawn
    p = tmp_path / "r.toml"
    p.write_text(p.read_text().replace("asn = 65001", 'asn = 65001\npolicy = "accept-all"'))
    done = c.reconfigure(load_config(p))
    assert done == {"removed": [], "added": [], "restarted": [], "changed": ["127.0.0.2"]}
    assert c.peers["127.0.0.2"] is up_peer and up_peer.up  # the session is untouched
    assert [x.rsplit(" ", 1)[1] for x in c.commands()] == ["198.51.100.0/24"]
    # a second downstream added: it gets the table once it is up; the first sees no change
    p.write_text(
        p.read_text() + '\n[[neighbor]]\naddress = "127.0.0.8"\nasn = 65008\nrole = "downstream"\n'
    )
    assert c.reconfigure(load_config(p))["added"] == ["127.0.0.8"]
    assert c.commands() == []
    up(c, "127.0.0.8")
    assert sorted(x.split(" nlri ")[1] for x in c.commands()) == ["11.0.0.0/8 198.51.100.0/24"]
    # the upstream removed: its routes are withdrawn downstream; its last events are no error
    text = p.read_text()
    p.write_text(
        text.replace(
            '[[neighbor]]\naddress = "127.0.0.2"\nasn = 65001\npolicy = "accept-all"\n', ""
        )
    )
    assert c.reconfigure(load_config(p))["removed"] == ["127.0.0.2"]
    assert sorted(c.commands()) == [
        f"neighbor {d} withdraw attributes next-hop self nlri 11.0.0.0/8 198.51.100.0/24"
        for d in ("127.0.0.8", "127.0.0.9")
    ]
    c.feed_line(msg("state", state="down", reason="removed"))
    assert c.stats.unparsed == 0 and list(c.routes()) == []
