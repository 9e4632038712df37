"""BGP NOTIFICATION codes in words (RFC 4271, RFC 4486)."""

from rov_router.bgp.notify import describe, notification_text


def test_codes_and_subcodes_by_their_rfc_names():
    assert notification_text(6, 2) == "Cease / Administrative Shutdown (6/2)"
    assert notification_text(6, 4) == "Cease / Administrative Reset (6/4)"
    assert notification_text(3, 8) == "UPDATE Message Error / Invalid NEXT_HOP Attribute (3/8)"
    assert notification_text(2, 2) == "OPEN Message Error / Bad Peer AS (2/2)"
    assert notification_text(4, 0) == "Hold Timer Expired (4/0)"
    assert notification_text(6, 99) == "Cease / subcode 99 (6/99)"
    assert notification_text(42, 1) == "error code 42 / subcode 1 (42/1)"


def test_exabgp_reasons_are_rewritten_in_words():
    assert describe("notification received (6,2)") == (
        "notification received: Cease / Administrative Shutdown (6/2)"
    )
    assert describe("notification sent (4,0)") == "notification sent: Hold Timer Expired (4/0)"
    assert describe("closing connection") == "closing connection"
