"""The router's connect to a cache, whatever the transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .options import TransportOptions


async def open_connection(
    opts: TransportOptions | None,
    host: str,
    port: int,
    protocol_factory: Callable[[], asyncio.Protocol],
) -> Any:
    """Connect to a cache; returns the transport (already passed to the protocol's
    ``connection_made``).  Raises OSError (:class:`TransportError` with a clear message for
    refused certificates, host keys and authentication)."""
    opts = opts or TransportOptions()
    if opts.transport == "tls":
        from .tls import connect_tls

        return await connect_tls(opts, host, port, protocol_factory)
    if opts.transport == "ssh":
        from .ssh import connect_ssh

        return await connect_ssh(opts, host, port, protocol_factory)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(protocol_factory, host, port)
    return transport
