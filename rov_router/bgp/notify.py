"""BGP NOTIFICATION error codes and subcodes in words (RFC 4271 §4.5 and §6, RFC 4486 Cease
subcodes, RFC 5492, RFC 6608, RFC 7313, RFC 8538, RFC 9234), for log lines, `show` and the
live table: ``6/2`` -> ``Cease / Administrative Shutdown``."""

from __future__ import annotations

import re

CODES: dict[int, tuple[str, dict[int, str]]] = {
    1: (
        "Message Header Error",
        {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
    ),
    2: (
        "OPEN Message Error",
        {
            1: "Unsupported Version Number",
            2: "Bad Peer AS",
            3: "Bad BGP Identifier",
            4: "Unsupported Optional Parameter",
            6: "Unacceptable Hold Time",
            7: "Unsupported Capability",
            11: "Role Mismatch",
        },
    ),
    3: (
        "UPDATE Message Error",
        {
            1: "Malformed Attribute List",
            2: "Unrecognized Well-known Attribute",
            3: "Missing Well-known Attribute",
            4: "Attribute Flags Error",
            5: "Attribute Length Error",
            6: "Invalid ORIGIN Attribute",
            8: "Invalid NEXT_HOP Attribute",
            9: "Optional Attribute Error",
            10: "Invalid Network Field",
            11: "Malformed AS_PATH",
        },
    ),
    4: ("Hold Timer Expired", {}),
    5: (
        "Finite State Machine Error",
        {
            1: "Unexpected Message in OpenSent",
            2: "Unexpected Message in OpenConfirm",
            3: "Unexpected Message in Established",
        },
    ),
    6: (
        "Cease",
        {
            1: "Maximum Number of Prefixes Reached",
            2: "Administrative Shutdown",
            3: "Peer De-configured",
            4: "Administrative Reset",
            5: "Connection Rejected",
            6: "Other Configuration Change",
            7: "Connection Collision Resolution",
            8: "Out of Resources",
            9: "Hard Reset",
            10: "BFD Down",
        },
    ),
    7: ("ROUTE-REFRESH Message Error", {1: "Invalid Message Length"}),
}


def notification_text(code: int, subcode: int) -> str:
    """``Cease / Administrative Shutdown (6/2)``; unknown codes stay numeric."""
    name, subs = CODES.get(code, (f"error code {code}", {}))
    if subcode == 0 or (not subs and subcode == 0):
        return f"{name} ({code}/{subcode})"
    return f"{name} / {subs.get(subcode, f'subcode {subcode}')} ({code}/{subcode})"


_PAIR = re.compile(r"(notification (?:received|sent)) \((\d+),\s*(\d+)\)")


def describe(reason: str) -> str:
    """ExaBGP's ``notification received (6,2)`` -> ``notification received: Cease /
    Administrative Shutdown (6/2)``; other text is returned unchanged."""
    return _PAIR.sub(lambda m: f"{m[1]}: {notification_text(int(m[2]), int(m[3]))}", reason or "")
