"""What happens to a route given its validation state and the neighbor's policy.

* ``drop-invalid`` (default): invalid routes are not eligible (kept in the Adj-RIB-In, shown
  as dropped, re-evaluated when VRPs change: RFC 8481 / RFC 9324);
* ``depref-invalid``: invalid routes stay eligible with a low local-pref;
* ``tag``: everything is accepted and carries the RFC 8097 origin validation state extended
  community downstream;
* ``accept-all``: validate and show, change nothing (RFC 8481 §4: no policy unless configured).
"""

from __future__ import annotations

from dataclasses import dataclass

from .bgp.exabgp import rfc8097_community

DEFAULT_LOCAL_PREF = 100


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
