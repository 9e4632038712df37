"""ASPA-based AS_PATH verification (draft-ietf-sidrops-aspa-verification-28, §5), with the
reason in plain words.

Paths are given as received: ``path[0]`` is the neighbor (the most recently added AS, the
draft's AS(N)), ``path[-1]`` the origin (AS(1)); an AS_SET, if any, follows the sequence.

* ``authorized(x, y)`` (§5.3): No Attestation when x has no ASPA; Provider+ when y is in the
  union of x's provider sets (U-SPAS); otherwise Not Provider+ (an AS0-only record makes every
  hop from x Not Provider+).
* Ramp bounds (§5.4) over the path with consecutive duplicates (prepends) removed.
* Upstream (§5.5, routes from customers, lateral peers, route servers and RS-clients) and
  downstream (§5.6, routes from providers): empty path, neighbor-AS mismatch (except at an
  RS-client) and AS_SET give Invalid; then the ramp comparisons give Invalid / Unknown / Valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class ASPAState(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


NO_ATTESTATION = "no-attestation"
PROVIDER_PLUS = "provider+"
NOT_PROVIDER_PLUS = "not-provider+"

#: the verification algorithm for a neighbor role (as seen from the verifying router)
ALGORITHM = {
    "customer": "upstream",
    "peer": "upstream",
    "rs-client": "upstream",  # a route server checking a route from one of its clients
    "route-server": "upstream",  # an RS-client checking a route from the route server
    "provider": "downstream",
}

Providers = Callable[[int], "frozenset[int] | None"]


@dataclass(frozen=True)
class ASPAResult:
    state: ASPAState
    reason: str
    n: int = 0
    max_up: int = 0
    min_up: int = 0
    max_down: int = 0
    min_down: int = 0
    #: the hops that are Not Provider+ (customer, claimed provider), in path order
    bad_hops: tuple[tuple[int, int], ...] = field(default=())
    #: ASes on the path without an ASPA
    unattested: tuple[int, ...] = field(default=())


def authorized(providers: Providers, x: int, y: int) -> str:
    spas = providers(x)
    if spas is None:
        return NO_ATTESTATION
    return PROVIDER_PLUS if y in spas else NOT_PROVIDER_PLUS


def compress(path: Sequence[int]) -> list[int]:
    out: list[int] = []
    for a in path:
        if not out or out[-1] != a:
            out.append(a)
    return out


def verify(
    path: Sequence[int],
    providers: Providers,
    *,
    algorithm: str,
    neighbor_as: int | None = None,
    as_set: Sequence[int] | None = None,
    receiver_is_rs_client: bool = False,
) -> ASPAResult:
    """Verify one AS_PATH.  ``algorithm`` is ``upstream`` or ``downstream``."""
    if algorithm not in ("upstream", "downstream"):
        raise ValueError(f"algorithm must be upstream or downstream, not {algorithm!r}")
    if not path and not as_set:
        return ASPAResult(ASPAState.INVALID, "the AS_PATH is empty")
    if (
        path
        and neighbor_as is not None
        and path[0] != neighbor_as
        and not (algorithm == "upstream" and receiver_is_rs_client)
    ):
        return ASPAResult(
            ASPAState.INVALID,
            f"the most recently added AS, AS{path[0]}, is not the neighbor AS{neighbor_as}",
        )
    if as_set:
        return ASPAResult(ASPAState.INVALID, "the AS_PATH contains an AS_SET")
    a = compress(path)[::-1]  # a[0] = A(1) = origin ... a[n-1] = A(N) = neighbor
    n = len(a)
    # authorization of each hop i -> i+1 (0-based), computed once
    up = [authorized(providers, a[i], a[i + 1]) for i in range(n - 1)]  # A(i+1) -> A(i+2)
    down = [authorized(providers, a[j], a[j - 1]) for j in range(1, n)]  # A(j+1) -> A(j)
    max_up = next((i + 1 for i, r in enumerate(up) if r == NOT_PROVIDER_PLUS), n)
    min_up = next((i + 1 for i, r in enumerate(up) if r != PROVIDER_PLUS), n)
    bad = tuple((a[i], a[i + 1]) for i, r in enumerate(up) if r == NOT_PROVIDER_PLUS)
    unattested = tuple(x for x in dict.fromkeys(a) if providers(x) is None)
    if algorithm == "upstream":
        if max_up < n:
            return ASPAResult(
                ASPAState.INVALID,
                _leak_reason(a, max_up, providers),
                n,
                max_up,
                min_up,
                0,
                0,
                bad,
                unattested,
            )
        if min_up < n:
            return ASPAResult(
                ASPAState.UNKNOWN,
                _unknown_reason(unattested),
                n,
                max_up,
                min_up,
                0,
                0,
                bad,
                unattested,
            )
        return ASPAResult(
            ASPAState.VALID,
            "every hop climbs to an attested provider",
            n,
            max_up,
            min_up,
            0,
            0,
            bad,
            unattested,
        )
    # downstream: J runs over 2..N; down[j-1] is authorized(A(j+1), A(j)) in 1-based terms
    max_down = next(
        (n - (j + 1) + 1 for j in range(n - 1, 0, -1) if down[j - 1] == NOT_PROVIDER_PLUS), n
    )
    min_down = next(
        (n - (j + 1) + 1 for j in range(n - 1, 0, -1) if down[j - 1] != PROVIDER_PLUS), n
    )
    bad_down = tuple((a[j], a[j - 1]) for j in range(1, n) if down[j - 1] == NOT_PROVIDER_PLUS)
    if max_up + max_down < n:
        return ASPAResult(
            ASPAState.INVALID,
            "no valley-free shape fits: the up-ramp ends at "
            f"AS{a[max_up - 1]} and the down-ramp at AS{a[n - max_down]}, more than "
            f"one hop apart; {_hops(bad + bad_down, providers)}",
            n,
            max_up,
            min_up,
            max_down,
            min_down,
            bad + bad_down,
            unattested,
        )
    if min_up + min_down < n:
        return ASPAResult(
            ASPAState.UNKNOWN,
            _unknown_reason(unattested),
            n,
            max_up,
            min_up,
            max_down,
            min_down,
            bad + bad_down,
            unattested,
        )
    return ASPAResult(
        ASPAState.VALID,
        "up-ramp and down-ramp meet: a valley-free path",
        n,
        max_up,
        min_up,
        max_down,
        min_down,
        bad + bad_down,
        unattested,
    )


def _hops(bad: tuple[tuple[int, int], ...], providers: Providers) -> str:
    parts = []
    for x, y in dict.fromkeys(bad):
        spas = providers(x) or frozenset()
        listed = (
            "no providers (AS0)"
            if spas == {0}
            else ("providers " + ", ".join(f"AS{p}" for p in sorted(spas)))
        )
        parts.append(
            f"AS{x} -> AS{y} is not an attested provider hop (AS{x}'s ASPA lists {listed})"
        )
    return "; ".join(parts)


def _leak_reason(a: list[int], max_up: int, providers: Providers) -> str:
    x, y = a[max_up - 1], a[max_up]
    return (
        f"{_hops(((x, y),), providers)}; route leaked by AS{y}, which passed on a route "
        f"from AS{x} that it must only send to its customers"
    )


def _unknown_reason(unattested: tuple[int, ...]) -> str:
    who = ", ".join(f"AS{x}" for x in unattested) or "some AS"
    return f"no contradiction, but {who} published no ASPA, so the path cannot be proven"
