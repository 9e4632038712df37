"""The embedded cache's TLS and SSH listeners: accept, check the peer (client certificate and
source address; SSH user and key or password), then hand the connection to an RTR protocol."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from .options import HANDSHAKE_TIMEOUT, SSHServerOptions, TLSServerOptions, TransportError
from .ssh import load_ssh
from .tls import cert_subject, client_ip_problem, server_tls_context


class Listener:
    """A TLS or SSH listener of the embedded cache."""

    kind = "?"

    def __init__(
        self,
        opts,
        make_protocol: Callable[[str], asyncio.Protocol],
        on_event: Callable[[str, str, str], None],
    ) -> None:
        self.opts = opts
        self.host = opts.host
        self.port = opts.port
        self.make_protocol = make_protocol
        self._on_event = on_event

    def event(self, kind: str, message: str, level: str = "warning") -> None:
        self._on_event(kind, message, level)

    async def close(self) -> None:
        """Stop accepting (connections already handed over stay open)."""

    def drop_all(self) -> None:
        """Close what :meth:`close` left open that never became an RTR session."""


class TLSListener(Listener):
    kind = "TLS"

    async def start(self) -> None:
        self.ctx = server_tls_context(self.opts)
        self.tasks: set[asyncio.Task] = set()
        loop = asyncio.get_running_loop()
        listener = self

        class Accept(asyncio.Protocol):
            def connection_made(self, transport) -> None:
                transport.pause_reading()  # start_tls resumes it, bytes go to the TLS layer
                t = asyncio.ensure_future(listener._handshake(transport))
                listener.tasks.add(t)
                t.add_done_callback(listener.tasks.discard)

        try:
            self.server = await loop.create_server(Accept, self.host, self.port, reuse_address=True)
        except OSError as e:
            raise TransportError(f"cannot listen for TLS on {self.host}:{self.port}: {e}") from None
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handshake(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peer = raw.get_extra_info("peername")
        label = f"{peer[0]}:{peer[1]}" if peer else "?"
        pending = _Pending()
        try:
            tls = await loop.start_tls(
                raw, pending, self.ctx, server_side=True, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
            )
        except (ssl.SSLError, OSError, TimeoutError) as e:
            if isinstance(e, ssl.SSLCertVerificationError):
                reason = (
                    f"client certificate not trusted ({e.verify_message}; client CA file "
                    f"{self.opts.client_ca})"
                )
            elif getattr(e, "reason", None) == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
                reason = "the router sent no client certificate (one is required)"
            else:
                reason = getattr(e, "reason", None) or str(e) or type(e).__name__
            self.event("close", f"{label}: TLS handshake failed: {reason}")
            raw.abort()
            return
        except asyncio.CancelledError:
            raw.abort()
            raise
        if tls is None:
            return
        cert = tls.get_extra_info("peercert")
        problem = client_ip_problem(cert, peer[0] if peer else "")
        if problem:
            self.event("close", f"{label}: TLS client refused: {problem}")
            tls.abort()
            return
        proto = self.make_protocol(f"TLS, client certificate {cert_subject(cert)}")
        tls.set_protocol(proto)
        proto.connection_made(tls)
        pending.hand_over(proto)

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


class _Pending(asyncio.Protocol):
    """Holds what arrives between the end of the TLS handshake and the client check."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.lost: list[Exception | None] = []

    def data_received(self, data: bytes) -> None:
        self.buf += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    def hand_over(self, proto: asyncio.Protocol) -> None:
        if self.buf:
            proto.data_received(bytes(self.buf))
        if self.lost:
            proto.connection_lost(self.lost[0])


class SSHListener(Listener):
    kind = "SSH"

    async def start(self) -> None:
        asyncssh, _, Server = load_ssh()
        self.conns: set = set()
        try:
            self.acceptor = await asyncssh.create_server(
                lambda: Server(self),
                self.host,
                self.port,
                server_host_keys=[str(self.opts.host_key)],
                encoding=None,
                agent_forwarding=False,
                allow_scp=False,
                login_timeout=30,
                reuse_address=True,
            )
        except (OSError, asyncssh.Error, ValueError) as e:
            raise TransportError(f"cannot listen for SSH on {self.host}:{self.port}: {e}") from None
        self.port = self.acceptor.get_port()

    async def close(self) -> None:
        self.acceptor.close()
        await self.acceptor.wait_closed()

    def drop_all(self) -> None:
        for c in list(self.conns):
            c.abort()
        self.conns.clear()


async def start_listener(
    opts: TLSServerOptions | SSHServerOptions,
    make_protocol: Callable[[str], asyncio.Protocol],
    on_event: Callable[[str, str, str], None],
) -> TLSListener | SSHListener:
    """Listen for routers over TLS or SSH.  ``make_protocol(via)`` makes the RTR protocol for
    one accepted, checked connection; ``on_event(kind, message, level)`` reports refusals."""
    lst: TLSListener | SSHListener = (
        TLSListener(opts, make_protocol, on_event)
        if isinstance(opts, TLSServerOptions)
        else SSHListener(opts, make_protocol, on_event)
    )
    await lst.start()
    return lst
