"""SSH (RFC 8210 §9): the ``rpki-rtr`` subsystem over asyncssh, imported on first use only.
The client's connect with its host-key and authentication checks, the channel adapter that
looks like an asyncio transport, and the server classes the cache's SSH listener runs."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import SSH_SUBSYSTEM, TransportError

if TYPE_CHECKING:
    from .listen import SSHListener

log = logging.getLogger("rov_router.rtr")


class ChannelTransport:
    """An asyncssh channel dressed as the asyncio transport the RTR code expects."""

    def __init__(
        self, chan, conn, protocol: asyncio.Protocol, *, close_conn_after: float | None = None
    ) -> None:
        self._chan = chan
        self._conn = conn
        self._protocol = protocol
        self._close_conn_after = close_conn_after
        self._closing = False
        self._paused = False
        self._gather: list[bytes] | None = None

    def deliver(self, data: bytes) -> None:
        """Channel data for the protocol (from the asyncssh session object)."""
        if self._gather is not None:
            self._gather.append(data)
        else:
            self._protocol.data_received(data)

    def is_closing(self) -> bool:
        return self._closing or self._chan.is_closing()

    def write(self, data: bytes) -> None:
        if not self.is_closing():
            self._chan.write(data)

    def close(self) -> None:
        """Close the channel after the queued data is sent; the connection follows."""
        if self._closing:
            return
        self._closing = True
        self._chan.close()
        if self._close_conn_after is not None:
            # a peer that never answers the channel close must not keep the connection open
            asyncio.get_running_loop().call_later(self._close_conn_after, self._close_conn)

    def _close_conn(self) -> None:
        if not self._conn.is_closed():
            self._conn.close()

    def abort(self) -> None:
        self._closing = True
        self._chan.abort()
        self._conn.abort()

    def pause_reading(self) -> None:
        self._paused = True
        self._chan.pause_reading()

    def resume_reading(self) -> None:
        """Resume, handing everything asyncssh held back meanwhile over as ONE chunk.

        asyncssh delivers what it buffered while paused packet by packet; a reader that pauses
        after each small read (the client's read coalescing, against a cache that writes PDU by
        PDU) would otherwise get one SSH packet per resume and stall the transfer."""
        if not self._paused:
            return
        self._paused = False
        self._gather = []
        try:
            self._chan.resume_reading()  # delivers synchronously into deliver()
        finally:
            data = b"".join(self._gather)
            self._gather = None
        if data and not self._closing:
            self._protocol.data_received(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        v = self._chan.get_extra_info(name)
        if v is None:
            v = self._conn.get_extra_info(name, default)
        return v

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._chan.set_write_buffer_limits(high=high, low=low)

    def get_write_buffer_size(self) -> int:
        return self._chan.get_write_buffer_size()


@functools.cache
def load_ssh():
    """asyncssh and the session classes built on it (imported on first use)."""
    import asyncssh

    alog = logging.getLogger("asyncssh")
    if alog.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
        alog.setLevel(logging.WARNING)  # its INFO lines (every channel open/close) are noise

    class ClientSession(asyncssh.SSHClientSession):
        def __init__(self, protocol: asyncio.Protocol) -> None:
            self.protocol = protocol
            self.conn = None
            self.adapter: ChannelTransport | None = None

        def data_received(self, data, datatype) -> None:
            if self.adapter is not None:
                self.adapter.deliver(data)
            else:
                self.protocol.data_received(data)

        def eof_received(self) -> bool:
            return False  # close the channel

        def pause_writing(self) -> None:
            self.protocol.pause_writing()

        def resume_writing(self) -> None:
            self.protocol.resume_writing()

        def connection_lost(self, exc) -> None:
            self.protocol.connection_lost(exc)
            if self.conn is not None:
                self.conn.close()

    class ServerSession(asyncssh.SSHServerSession):
        def __init__(self, listener: SSHListener, server: Server) -> None:
            self.listener = listener
            self.server = server
            self.chan = None
            self.protocol = None
            self.adapter: ChannelTransport | None = None

        def connection_made(self, chan) -> None:
            self.chan = chan

        def pty_requested(self, *args) -> bool:
            return False

        def subsystem_requested(self, subsystem: str) -> bool:
            if subsystem == SSH_SUBSYSTEM:
                return True
            self.listener.event(
                "close",
                f"{self.server.label}: SSH subsystem {subsystem!r} refused "
                f"(only {SSH_SUBSYSTEM!r} is served)",
            )
            return False

        def session_started(self) -> None:
            self.protocol = self.listener.make_protocol(f"SSH as {self.server.username}")
            self.adapter = ChannelTransport(
                self.chan, self.server.conn, self.protocol, close_conn_after=5.0
            )
            self.protocol.connection_made(self.adapter)

        def data_received(self, data, datatype) -> None:
            if self.adapter is not None:
                self.adapter.deliver(data)

        def eof_received(self) -> bool:
            return False

        def pause_writing(self) -> None:
            if self.protocol is not None:
                self.protocol.pause_writing()

        def resume_writing(self) -> None:
            if self.protocol is not None:
                self.protocol.resume_writing()

        def connection_lost(self, exc) -> None:
            if self.protocol is not None:
                self.protocol.connection_lost(exc)
            self.server.conn.close()  # one RTR session per SSH connection

    class Server(asyncssh.SSHServer):
        def __init__(self, listener: SSHListener) -> None:
            self.listener = listener
            self.opts = listener.opts
            self.conn = None
            self.label = "?"
            self.username = "?"
            self.authenticated = False
            self.password_refused = False

        def connection_made(self, conn) -> None:
            self.conn = conn
            peer = conn.get_extra_info("peername")
            self.label = f"{peer[0]}:{peer[1]}" if peer else "?"
            self.listener.conns.add(conn)

        def connection_lost(self, exc) -> None:
            self.listener.conns.discard(self.conn)
            if not self.authenticated:
                self.listener.event(
                    "close",
                    f"{self.label}: SSH connection closed without successful authentication"
                    f" (user {self.username!r}"
                    + (", wrong password" if self.password_refused else "")
                    + ")"
                    + (f": {exc}" if exc else ""),
                )

        def begin_auth(self, username: str) -> bool:
            self.username = username
            o = self.opts
            if o.authorized_keys is not None and (o.user is None or username == o.user):
                self.conn.set_authorized_keys(str(o.authorized_keys))
            return True  # authentication is always required

        def public_key_auth_supported(self) -> bool:
            return self.opts.authorized_keys is not None

        def password_auth_supported(self) -> bool:
            return self.opts.password is not None

        def validate_password(self, username: str, password: str) -> bool:
            o = self.opts
            ok = (
                o.password is not None
                and username == o.user
                and hmac.compare_digest(password.encode(), o.password.encode())
            )
            self.password_refused = self.password_refused or not ok
            return ok

        def auth_completed(self) -> None:
            self.authenticated = True

        def session_requested(self):
            return ServerSession(self.listener, self)

    return asyncssh, ClientSession, Server


async def connect_ssh(opts, host, port, protocol_factory):
    asyncssh, ClientSession, _ = load_ssh()
    where = f"{host}:{port}"
    kh = opts.known_hosts_path()
    known: str | None = str(kh)
    if not kh.is_file() or not _known_host_listed(asyncssh, kh, host, port):
        if not opts.ssh_insecure_accept_unknown_host_key:
            if not kh.is_file():
                raise TransportError(
                    f"SSH: cannot check the host key of {where}: no known_hosts file {kh}; "
                    "not connecting"
                )
            # asyncssh refuses it below with HostKeyNotVerifiable; the message is ours
        else:
            log.warning(
                "%s: accepting any SSH host key (%s has no entry for it; insecure option set)",
                where,
                kh,
            )
            known = None
    client_keys = None
    if opts.ssh_key is not None:
        try:
            client_keys = [asyncssh.read_private_key(str(opts.ssh_key))]
        except (OSError, asyncssh.KeyImportError) as e:
            raise TransportError(f"SSH: cannot read the private key {opts.ssh_key}: {e}") from None
    try:
        conn = await asyncssh.connect(
            host,
            port,
            username=opts.ssh_user,
            client_keys=client_keys,
            password=opts.ssh_password,
            known_hosts=known,
            agent_path=None,
            config=None,
            preferred_auth=("publickey", "password")
            if opts.ssh_password is not None
            else ("publickey",),
        )
    except asyncssh.HostKeyNotVerifiable:
        listed = _known_host_listed(asyncssh, kh, host, port)
        raise TransportError(
            f"SSH: the host key of {where} "
            + (
                f"does not match the key recorded for it in {kh} (changed key or an impostor)"
                if listed
                else f"is unknown: {kh} has no entry for {host} / [{host}]:{port}"
            )
            + "; not connecting"
        ) from None
    except asyncssh.PermissionDenied as e:
        raise TransportError(
            f"SSH: {where} refused authentication as {opts.ssh_user!r} "
            f"({'key ' + str(opts.ssh_key) if opts.ssh_key else ''}"
            f"{' / ' if opts.ssh_key and opts.ssh_password is not None else ''}"
            f"{'password' if opts.ssh_password is not None else ''}): {e.reason}"
        ) from None
    except asyncssh.Error as e:
        raise TransportError(f"SSH connection to {where} failed: {e.reason}") from None
    proto = protocol_factory()
    try:
        chan, session = await conn.create_session(
            lambda: ClientSession(proto), subsystem=SSH_SUBSYSTEM, encoding=None
        )
    except (asyncssh.Error, OSError) as e:
        conn.close()
        raise TransportError(
            f"SSH: {where} did not open the {SSH_SUBSYSTEM!r} subsystem: {getattr(e, 'reason', e)}"
        ) from None
    except BaseException:
        conn.close()
        raise
    session.conn = conn
    transport = ChannelTransport(chan, conn, proto, close_conn_after=2.0)
    session.adapter = transport
    proto.connection_made(transport)  # type: ignore[arg-type]
    return transport


def _known_host_listed(asyncssh, path: Path, host: str, port: int) -> bool:
    """Whether known_hosts has any host key (or CA key) for host / [host]:port."""
    try:
        kh = asyncssh.read_known_hosts(str(path))
        res = kh.match(host, host, port)
    except (OSError, ValueError):
        return False
    return bool(res[0] or res[1])
