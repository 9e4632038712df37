"""``python -m rov_router.bgp.exabgp_run ARGS``: ExaBGP 5 (``python -m exabgp ARGS``) with its
reactor's command budget raised.

ExaBGP runs the work of API commands in its reactor loop, at most ``ASYNC.LIMIT`` steps (one
step per prefix of an ``announce attributes ... nlri`` command) per turn of the loop, 50 by
default, and each turn runs that work in a fresh ``asyncio`` event loop, then gives every peer a
turn and polls with a 10 ms timeout (``exabgp.reactor.speed`` / 100) even while commands are
still pending.  With 50 prefixes a turn a full table reaches a downstream at a few thousand
prefixes a second at best.  ``ASYNC.LIMIT`` is a class attribute, not an ExaBGP setting, so this
entry point sets it (``ROV_ROUTER_EXABGP_ASYNC_LIMIT``, default :data:`ASYNC_LIMIT`) before
handing over to ExaBGP's own ``main``.  Only the ExaBGP rov-router starts runs through it.
"""

from __future__ import annotations

import os
import sys

#: command steps (prefixes) per reactor turn in the ExaBGP we launch (ExaBGP's default: 50)
ASYNC_LIMIT = 2000
ENV = "ROV_ROUTER_EXABGP_ASYNC_LIMIT"


def async_limit(environ: dict[str, str] | os._Environ = os.environ) -> int:
    """The budget from ``ROV_ROUTER_EXABGP_ASYNC_LIMIT`` (a positive integer), else the
    default."""
    text = environ.get(ENV, "")
    try:
        value = int(text)
    except ValueError:
        return ASYNC_LIMIT
    return value if value > 0 else ASYNC_LIMIT


def main() -> None:
    from exabgp.reactor.asynchronous import ASYNC

    ASYNC.LIMIT = async_limit()
    sys.argv[0] = "exabgp"
    from exabgp.application.main import main as exabgp_main

    exabgp_main()


if __name__ == "__main__":
    main()
