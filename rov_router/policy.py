"""What happens to a route given its validation state and the neighbor's policy.

* ``drop-invalid`` (default): invalid routes are not eligible (kept in the Adj-RIB-In, shown
  as dropped, re-evaluated when VRPs change: RFC 8481 / RFC 9324);
* ``depref-invalid``: invalid routes stay eligible with a low local-pref;
* ``tag``: everything is accepted and carries the RFC 8097 origin validation state extended
  community downstream;
* ``accept-all``: validate and show, change nothing (RFC 8481 §4: no policy unless configured).

ASPA (route leaks) has its own per-neighbor policy for ASPA-invalid routes: ``drop``
(default, aspa-verification §5.7: ineligible, kept for re-evaluation), ``depref``, ``tag``
(large community ``LOCAL_AS:1:2``; ``:1:0`` valid, ``:1:1`` unknown) or ``accept``.  Unknown
is treated like Valid (§5.7).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LOCAL_PREF = 100

#: RFC 8097 BGP prefix origin validation state extended community: type 0x43, sub-type 0x00,
#: the state in the last octet
RFC8097_STATE = {"valid": 0, "not-found": 1, "invalid": 2}


def rfc8097_community(state: str) -> str:
    """The RFC 8097 extended community for an origin validation state, as ExaBGP writes it."""
    return f"0x43000000000000{RFC8097_STATE[state]:02x}"


@dataclass(frozen=True, slots=True)
class Decision:
    accepted: bool
    local_pref: int
    action: str  # accept | drop | depref | tag
    ext_communities: tuple[str, ...] = ()


def decide(policy: str, state: str, *, depref_local_pref: int = 50) -> Decision:
    invalid = state == "invalid"
    if policy == "drop-invalid":
        if invalid:
            return Decision(False, DEFAULT_LOCAL_PREF, "drop")
        return Decision(True, DEFAULT_LOCAL_PREF, "accept")
    if policy == "depref-invalid":
        if invalid:
            return Decision(True, depref_local_pref, "depref")
        return Decision(True, DEFAULT_LOCAL_PREF, "accept")
    if policy == "tag":
        return Decision(True, DEFAULT_LOCAL_PREF, "tag", (rfc8097_community(state),))
    if policy == "accept-all":
        return Decision(True, DEFAULT_LOCAL_PREF, "accept")
    raise ValueError(f"unknown policy {policy!r}")


ASPA_TAG = {"valid": 0, "unknown": 1, "invalid": 2}


def decide_aspa(
    d: Decision,
    aspa_state: str | None,
    aspa_policy: str,
    *,
    local_as: int,
    depref_local_pref: int = 50,
) -> tuple[Decision, tuple[tuple[int, int, int], ...]]:
    """Combine the ROV decision with the ASPA verdict; returns the decision and any large
    communities to add downstream."""
    if aspa_state is None or not d.accepted:
        return d, ()
    invalid = aspa_state == "invalid"
    if aspa_policy == "drop" and invalid:
        return Decision(False, d.local_pref, "drop (leak)", d.ext_communities), ()
    if aspa_policy == "depref" and invalid:
        return Decision(
            True, min(d.local_pref, depref_local_pref), "depref (leak)", d.ext_communities
        ), ()
    if aspa_policy == "tag":
        return d, ((local_as, 1, ASPA_TAG[aspa_state]),)
    return d, ()
