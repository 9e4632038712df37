"""Keep the cyclic garbage collector off big, acyclic, long-lived data.

A VRP set is hundreds of thousands of small tuples (``VRP`` is a NamedTuple: CPython never
untracks tuple subclasses), so every full collection walks all of them.  Building one with the
collector running costs more in collections than in parsing; a full pass later stalls the
process for half a second or more.  :func:`gc_paused` turns the collector off while such data
is built and, with ``freeze``, moves everything alive at the end to the permanent generation
(:func:`gc.freeze`), which later passes skip.  Reference counting still frees those objects
when they are dropped; only garbage in reference cycles alive at that moment would be kept.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Collector off inside the block; ``freeze``: :func:`gc.freeze` on the way out."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was:
            gc.enable()
