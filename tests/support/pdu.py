"""RTR byte streams back into PDUs."""

from __future__ import annotations

from rov_router.rtr import pdu as P


def split_pdus(data: bytes) -> list[P.PDU]:
    """The PDUs in ``data``, which must end on a PDU boundary."""
    f = P.Framer()
    f.feed(data)
    out = [P.decode(raw) for raw in f]
    assert f.pending == 0, "a partial PDU at the end"
    return out
