"""The one MRT replay loop (``bgp.mrt.replay_plan``) shared by ``rov-router replay`` and the
lab's replay step, and the ExaBGP command text it is sent as."""

from __future__ import annotations

from rov_router.bgp.exabgp import (
    announce_command,
    mapped_next_hop,
    origin_attributes,
    withdraw_route_command,
)
from rov_router.bgp.mrt import (
    MRTUpdate,
    ReplayAnnounce,
    ReplayNote,
    ReplayWait,
    ReplayWithdraw,
    replay_plan,
)


def nh(prefix: str) -> str:
    return mapped_next_hop("127.0.0.2", prefix)


def test_prefixes_sharing_attributes_are_batched_and_flushed_before_a_withdrawal():
    u1 = MRTUpdate(
        100.0, 65001, "", announced=[(f"10.0.{i}.0/24", [65001, 1], []) for i in range(5)]
    )
    u1.announced.append(("2001:db8::/32", [65001, 1], []))
    u1.announced.append(("10.9.0.0/16", [65001, 2], [7, 8]))
    u2 = MRTUpdate(101.0, 65001, "", withdrawn=["10.0.0.0/24"])
    steps = [
        s for s in replay_plan([u1, u2], next_hop=nh, batch=3) if not isinstance(s, ReplayNote)
    ]
    assert steps == [
        ReplayAnnounce(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"], "127.0.0.2", (65001, 1), ()),
        # the rest is pending until the withdrawal: it must not overtake the announcement
        ReplayAnnounce(["10.0.3.0/24", "10.0.4.0/24"], "127.0.0.2", (65001, 1), ()),
        ReplayAnnounce(["2001:db8::/32"], "::ffff:127.0.0.2", (65001, 1), ()),
        ReplayAnnounce(["10.9.0.0/16"], "127.0.0.2", (65001, 2), (7, 8)),
        ReplayWithdraw(["10.0.0.0/24"]),
    ]


def test_paced_replay_waits_on_the_file_timeline_and_sends_what_is_pending_first():
    ups = [
        MRTUpdate(1000.0, 1, "", announced=[("10.0.0.0/8", [1], [])]),
        MRTUpdate(1030.0, 1, "", announced=[("11.0.0.0/8", [1], [])]),
    ]
    steps = [s for s in replay_plan(ups, next_hop=nh, speed=60.0) if not isinstance(s, ReplayNote)]
    assert steps == [
        ReplayWait(0.0),
        ReplayAnnounce(["10.0.0.0/8"], "127.0.0.2", (1,), ()),
        ReplayWait(0.5),  # 30 s of file time at 60x
        ReplayAnnounce(["11.0.0.0/8"], "127.0.0.2", (1,), ()),
    ]


def test_own_as_is_prepended_once_and_notes_follow_the_file_order():
    ups = [
        MRTUpdate(0.0, 1, "", announced=[("10.0.0.0/8", [65001, 5], []), ("11.0.0.0/8", [5], [])]),
        MRTUpdate(0.0, 1, "", withdrawn=["12.0.0.0/8"]),
    ]
    notes = [
        (s.prefix, s.path)
        for s in replay_plan(ups, next_hop=nh, prepend=65001)
        if isinstance(s, ReplayNote)
    ]
    assert notes == [("10.0.0.0/8", (65001, 5)), ("11.0.0.0/8", (65001, 5)), ("12.0.0.0/8", None)]


def test_no_updates_no_steps():
    assert list(replay_plan([], next_hop=nh, speed=1.0)) == []


def test_the_codec_writes_the_speaker_commands():
    attrs = origin_attributes("127.0.0.2", (65001, 1), (7, 8))
    assert attrs == "next-hop 127.0.0.2 as-path [ 65001 1 ] ( 7 8 )"
    assert (
        announce_command(None, attrs, ["10.0.0.0/8", "11.0.0.0/8"])
        == "announce attributes next-hop 127.0.0.2 as-path [ 65001 1 ] ( 7 8 ) "
        "nlri 10.0.0.0/8 11.0.0.0/8"
    )
    assert announce_command("127.0.0.9", "next-hop self", ["10.0.0.0/8"]).startswith(
        "neighbor 127.0.0.9 announce attributes next-hop self nlri"
    )
    assert withdraw_route_command("10.0.0.0/8") == "withdraw route 10.0.0.0/8"
    assert (
        withdraw_route_command("2001:db8::/32", nh("2001:db8::/32"))
        == "withdraw route 2001:db8::/32 next-hop ::ffff:127.0.0.2"
    )
