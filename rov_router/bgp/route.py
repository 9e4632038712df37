"""The route model: the path attributes shared by the prefixes of one UPDATE, and the
RFC 6811 origin AS of an AS path.  Codec-neutral: the ExaBGP codec builds these, the RIB,
the router core and policy read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attributes:
    """Path attributes shared by all prefixes of one UPDATE (one object per UPDATE)."""

    next_hop: str
    origin: str = "igp"  # igp | egp | incomplete
    as_path: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (kind, asns) segments in order
    med: int | None = None
    local_pref: int | None = None
    communities: tuple[tuple[int, int], ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    extended_communities: tuple[int, ...] = ()  # 8-octet values, as received
    atomic_aggregate: bool = False
    aggregator: str | None = None
    otc: int | None = None  # RFC 9234 Only To Customer, if ExaBGP reports it
    other: tuple[tuple[str, str], ...] = ()  # attributes we pass over (name, text)
    #: unknown optional transitive attributes (code, flags as received with Partial set, 0xHEX)
    generic: tuple[tuple[int, int, str], ...] = ()

    def origin_as(self, local_as: int | None = None) -> int | None:
        """RFC 6811 §2 origin: last AS of a final AS_SEQUENCE; ``local_as`` for an empty path
        or a final confederation segment; None (NONE) for a final AS_SET."""
        return origin_from_path(self.as_path, local_as)

    @property
    def path_length(self) -> int:
        """Best-path length: each AS in a sequence counts 1, an AS_SET counts 1 (RFC 4271
        9.1.2.2), confederation segments count 0."""
        n = 0
        for kind, asns in self.as_path:
            if kind == "sequence":
                n += len(asns)
            elif kind == "set":
                n += 1
        return n

    @property
    def flat_path(self) -> tuple[int, ...]:
        out: list[int] = []
        for _kind, asns in self.as_path:
            out.extend(asns)
        return tuple(out)

    def path_str(self) -> str:
        parts = []
        for kind, asns in self.as_path:
            if kind == "sequence":
                parts.append(" ".join(str(a) for a in asns))
            elif kind == "set":
                parts.append("{" + ",".join(str(a) for a in asns) + "}")
            else:
                parts.append("(" + " ".join(str(a) for a in asns) + ")")
        return " ".join(p for p in parts if p)


def origin_from_path(
    segments: Sequence[tuple[str, Sequence[int]]], local_as: int | None = None
) -> int | None:
    """RFC 6811 §2 origin AS from AS_PATH segments ``[(type, [asns]), ...]``.

    Types: ``"sequence"``, ``"set"``, ``"confed-sequence"``, ``"confed-set"``.  The origin is
    the last AS of a final AS_SEQUENCE; the local AS for an empty path or a final confederation
    segment; otherwise (a final AS_SET) None, meaning NONE.
    """
    segs = [s for s in segments if s[1]]
    if not segs:
        return local_as
    kind, asns = segs[-1]
    if kind == "sequence":
        return asns[-1]
    if kind.startswith("confed"):
        return local_as
    return None
