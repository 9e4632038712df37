"""RFC 6811 route origin validation, with the reason for every verdict.

* A VRP *covers* a route when its prefix contains the route's prefix; it *matches* when it
  covers it, the route is no longer than the VRP's maxLength, and the origin AS equals the VRP's
  AS.  Valid: at least one VRP matches.  Invalid: covered, none matches.  NotFound: not covered.
* An AS0 VRP never matches (RFC 6483 §4, RFC 7607), so it turns everything it covers invalid
  unless another VRP matches.
* A route whose AS_PATH ends in an AS_SET has no single origin: its origin is NONE, which
  matches nothing (RFC 6811 §2), so it is invalid when covered and not-found otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .store import VRPStore
from .vrp import VRP, parse_prefix


class OriginState(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    NOT_FOUND = "not-found"


VALID = OriginState.VALID
INVALID = OriginState.INVALID
NOT_FOUND = OriginState.NOT_FOUND


def make_checker(
    store: VRPStore, afi: int | None = None
) -> Callable[[bytes, int, int | None], OriginState]:
    """A fast ``check(addr, plen, origin) -> state`` bound to ``store`` (one trie lookup).

    ``origin`` None stands for NONE (an AS_SET-terminated path).  ``afi`` 4 or 6 gives a
    checker for one address family only (the router knows each route's family), which saves
    the family test on every call.  The store's tries are never replaced, so a checker stays
    valid as the store is updated.
    """
    if afi in (4, 6):
        get = store.trie(4 if afi == 4 else 16).get

        def check_one(addr: bytes, plen: int, origin: int | None) -> OriginState:
            node = get((addr, plen))
            if node is None:
                return NOT_FOUND
            b = node[0]
            if b.__class__ is int:
                # one authorised origin, packed as maxlen << 32 | asn; -1 (only AS0 covers)
                # fails the second test whatever the origin
                if b & 0xFFFFFFFF == origin and b >> 32 >= plen:
                    return VALID
                return INVALID
            return VALID if origin is not None and b.get(origin, -1) >= plen else INVALID

        return check_one
    check4 = make_checker(store, 4)
    check6 = make_checker(store, 6)

    def check(addr: bytes, plen: int, origin: int | None) -> OriginState:
        return check4(addr, plen, origin) if len(addr) == 4 else check6(addr, plen, origin)

    return check


@dataclass(frozen=True, slots=True)
class Verdict:
    """A validation state and why: the covering VRPs split into matched / wrong origin / too long."""

    state: OriginState
    prefix: str
    origin: int | None
    matched: tuple[VRP, ...] = ()
    wrong_origin: tuple[VRP, ...] = ()
    too_long: tuple[VRP, ...] = ()

    @property
    def covering(self) -> tuple[VRP, ...]:
        return self.matched + self.too_long + self.wrong_origin

    @property
    def reason(self) -> str:
        return explain(self)

    def to_json(self) -> dict:
        return {
            "prefix": self.prefix,
            "origin": self.origin,
            "state": str(self.state),
            "reason": self.reason,
            "matched": [_vrp_json(v) for v in self.matched],
            "unmatched_as": [_vrp_json(v) for v in self.wrong_origin],
            "unmatched_length": [_vrp_json(v) for v in self.too_long],
        }


def _vrp_json(v: VRP) -> dict:
    return {"prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn}


def _listing(vrps: Sequence[VRP], limit: int = 3) -> str:
    shown = ", ".join(str(v) for v in vrps[:limit])
    if len(vrps) > limit:
        shown += f" and {len(vrps) - limit} more"
    return shown


def explain(v: Verdict) -> str:
    """The verdict in plain words, e.g. "VRP 208.65.152.0/22-22 AS36561 covers it; origin
    AS17557 does not match"."""
    plen = v.prefix.rsplit("/", 1)[-1]
    if v.state is NOT_FOUND:
        if v.origin is None:
            return f"origin is an AS_SET (NONE), but no VRP covers {v.prefix}"
        return f"no VRP covers {v.prefix}"
    if v.state is VALID:
        s = f"VRP {v.matched[0]} matches origin AS{v.origin}"
        others = len(v.covering) - 1
        if others:
            s += f" ({others} other covering VRP{'s' if others > 1 else ''})"
        return s
    parts: list[str] = []
    if v.origin is None:
        parts.append("origin is an AS_SET, so no single origin AS can match")
    as0 = tuple(x for x in v.wrong_origin if x.asn == 0)
    other = tuple(x for x in v.wrong_origin if x.asn != 0)
    if v.too_long:
        ml = max(x.maxlen for x in v.too_long)
        parts.append(
            f"VRP {_listing(v.too_long)} has origin AS{v.origin} but /{plen} is longer than "
            f"maxLength {ml}"
        )
    if other and v.origin is not None:
        verb = "covers" if len(other) == 1 else "cover"
        parts.append(f"VRP {_listing(other)} {verb} it; origin AS{v.origin} does not match")
    elif other:
        parts.append(f"covered by VRP {_listing(other)}")
    if as0:
        parts.append(f"AS0 VRP {_listing(as0)} says it must not be routed")
    return "; ".join(parts)


def validate_route(
    store: VRPStore, addr: bytes, plen: int, origin: int | None, prefix: str | None = None
) -> Verdict:
    """Validate one route and collect the reason (slower than :func:`make_checker`).
    ``prefix`` is the route's text form when the caller already has it."""
    if prefix is None:
        prefix = VRP(addr, plen, plen, 0).prefix
    covering = store.covering(addr, plen)
    if not covering:
        return Verdict(NOT_FOUND, prefix, origin)
    matched: list[VRP] = []
    wrong: list[VRP] = []
    too_long: list[VRP] = []
    for vrp, _sources in covering:
        if origin is None or vrp.asn != origin or vrp.asn == 0:
            wrong.append(vrp)
        elif plen > vrp.maxlen:
            too_long.append(vrp)
        else:
            matched.append(vrp)
    state = VALID if matched else INVALID
    return Verdict(state, prefix, origin, tuple(matched), tuple(wrong), tuple(too_long))


def validate(store: VRPStore, prefix: str, origin: int | None) -> Verdict:
    """Validate ``prefix`` (e.g. ``"192.0.2.0/24"``) originated by ``origin`` (None: AS_SET)."""
    addr, plen = parse_prefix(prefix)
    return validate_route(store, addr, plen, origin)
