"""Secure RTR transports (RFC 8210 §9, 8210bis §9) beside plain TCP, for the router's client and
for the embedded cache.

* **TLS** (port 324): the router presents a client certificate and checks the cache's
  certificate against a CA and the cache's name (DNS-ID, or iPAddress for an IP literal; no
  CN-ID, no wildcards; TLS 1.2+).  The cache requires a client certificate from its CA and
  checks the connection's source address against the certificate's subjectAltName iPAddress
  entries (§9.2).
* **SSH** (asyncssh, no ``ssh`` subprocess): the ``rpki-rtr`` subsystem on a session channel,
  public-key and/or password authentication, the cache's host key checked against a
  known_hosts file.  The cache side serves the same subsystem.

Whatever the transport, the RTR code sees an object with the asyncio transport calls it uses
(``write``, ``close``, ``abort``, ``is_closing``, ``pause_reading``/``resume_reading``,
``get_extra_info``, write-buffer calls), and a protocol with ``connection_made``,
``data_received``, ``connection_lost`` (and ``pause_writing``/``resume_writing``).

asyncssh is imported on first SSH use only: it takes longer to import than the whole CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from ipaddress import ip_address
from pathlib import Path
from typing import Any

log = logging.getLogger("rov_router.rtr")

#: IANA ports: rpki-rtr 323, rpki-rtr-tls 324; SSH uses the normal SSH port (RFC 8210 §9)
DEFAULT_PORTS = {"tcp": 323, "tls": 324, "ssh": 22}
KINDS = tuple(DEFAULT_PORTS)
SSH_SUBSYSTEM = "rpki-rtr"
HANDSHAKE_TIMEOUT = 15.0

TLS_FIELDS = ("ca", "cert", "key", "server_name")
SSH_FIELDS = (
    "ssh_user",
    "ssh_key",
    "ssh_password",
    "known_hosts",
    "ssh_insecure_accept_unknown_host_key",
)


class TransportError(OSError):
    """A transport could not be set up (refused certificate or host key, failed
    authentication, unreadable key ...); the message says which and why."""


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``; with ``default_port`` also ``HOST``, ``[V6]`` or a bare
    IPv6 literal."""
    t = text.strip()
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if sep and not rest and default_port is not None:
            return host, default_port
        if sep and rest.startswith(":") and rest[1:].isdigit():
            return host, int(rest[1:])
        raise ValueError(f"expected HOST:PORT or [IPv6]:PORT, got {text!r}")
    if default_port is not None:
        with contextlib.suppress(ValueError):
            if ip_address(t).version == 6:
                return t, default_port
        if ":" not in t and t:
            return t, default_port
    host, sep, port = t.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


# ---- options ----------------------------------------------------------------------------------


@dataclass
class TransportOptions:
    """How the router reaches one cache.  Field names are the ``[[rpki]]`` config keys."""

    transport: str = "tcp"
    # TLS
    ca: Path | None = None  # CA file the cache's certificate must chain to (default: system CAs)
    cert: Path | None = None  # the router's client certificate ...
    key: Path | None = None  # ... and its private key
    server_name: str | None = None  # the cache's DNS name (or IP) to verify; default: the host
    # SSH
    ssh_user: str | None = None
    ssh_key: Path | None = None  # private key file (public-key authentication)
    ssh_password: str | None = None
    known_hosts: Path | None = None  # default: ~/.ssh/known_hosts
    ssh_insecure_accept_unknown_host_key: bool = False

    @property
    def default_port(self) -> int:
        return DEFAULT_PORTS.get(self.transport, 323)

    def known_hosts_path(self) -> Path:
        return self.known_hosts or Path.home() / ".ssh" / "known_hosts"

    def problem(self) -> tuple[str, str] | None:
        """The first inconsistency as (field, message), or None."""
        if self.transport not in KINDS:
            return "transport", f"{self.transport!r} is not one of {', '.join(KINDS)}"
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in TLS_FIELDS and v is not None and self.transport != "tls":
                return f.name, "only used with transport 'tls'"
            if f.name in SSH_FIELDS and v not in (None, False) and self.transport != "ssh":
                return f.name, "only used with transport 'ssh'"
        if self.transport == "tls":
            if self.cert is None or self.key is None:
                return (
                    "cert" if self.cert is None else "key",
                    "TLS needs the router's client certificate and key "
                    "(RFC 8210 §9: the router MUST present a client certificate)",
                )
            for name in ("ca", "cert", "key"):
                p = getattr(self, name)
                if p is not None and not Path(p).is_file():
                    return name, f"no such file: {p}"
        if self.transport == "ssh":
            if not self.ssh_user:
                return "ssh_user", "SSH needs a user name"
            if self.ssh_key is None and self.ssh_password is None:
                return "ssh_key", "SSH needs a private key file or a password"
            if self.ssh_key is not None and not Path(self.ssh_key).is_file():
                return "ssh_key", f"no such file: {self.ssh_key}"
            kh = self.known_hosts_path()
            if not self.ssh_insecure_accept_unknown_host_key and not kh.is_file():
                return (
                    "known_hosts",
                    f"no such file: {kh} (needed to check the cache's host key; or accept "
                    "unknown host keys explicitly, which is insecure)",
                )
        return None

    def describe(self) -> str:
        if self.transport == "tls":
            return "TLS"
        if self.transport == "ssh":
            return f"SSH as {self.ssh_user}"
        return "TCP"


@dataclass
class TLSServerOptions:
    """The embedded cache's TLS listener."""

    host: str
    port: int
    cert: Path
    key: Path
    client_ca: Path

    def problem(self) -> tuple[str, str] | None:
        for name in ("cert", "key", "client_ca"):
            p = getattr(self, name)
            if p is None:
                return name, "required for a TLS listener"
            if not Path(p).is_file():
                return name, f"no such file: {p}"
        return None


@dataclass
class SSHServerOptions:
    """The embedded cache's SSH listener."""

    host: str
    port: int
    host_key: Path
    authorized_keys: Path | None = None
    user: str | None = None  # the only user accepted (any user with authorized_keys when None)
    password: str | None = None

    def problem(self) -> tuple[str, str] | None:
        if self.host_key is None:
            return "host_key", "required for an SSH listener"
        if not Path(self.host_key).is_file():
            return "host_key", f"no such file: {self.host_key}"
        if self.authorized_keys is not None and not Path(self.authorized_keys).is_file():
            return "authorized_keys", f"no such file: {self.authorized_keys}"
        if self.password is not None and not self.user:
            return "user", "password authentication needs the user name"
        if self.authorized_keys is None and self.password is None:
            return "authorized_keys", "give an authorized_keys file and/or a user and password"
        return None


# ---- TLS --------------------------------------------------------------------------------------


def client_tls_context(opts: TransportOptions) -> ssl.SSLContext:
    """Verify the cache (CA + name, no CN-ID), present the router's certificate, TLS 1.2+."""
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(opts.ca) if opts.ca else None
        )
    except (OSError, ssl.SSLError) as e:
        raise TransportError(f"TLS: cannot load CA file {opts.ca}: {e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195 (RFC 8996, RFC 9325)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.hostname_checks_common_name = False  # RFC 6125 DNS-ID only
    try:
        ctx.load_cert_chain(str(opts.cert), str(opts.key))
    except (OSError, ssl.SSLError) as e:
        raise TransportError(
            f"TLS: cannot load the client certificate {opts.cert} / key {opts.key}: {e}"
        ) from None
    return ctx


def server_tls_context(opts: TLSServerOptions) -> ssl.SSLContext:
    """Serve ``cert``; require a client certificate issued by ``client_ca``; TLS 1.2+."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=str(opts.client_ca))
    except (OSError, ssl.SSLError) as e:
        raise TransportError(f"TLS: cannot load client CA file {opts.client_ca}: {e}") from None
    try:
        ctx.load_cert_chain(str(opts.cert), str(opts.key))
    except (OSError, ssl.SSLError) as e:
        raise TransportError(
            f"TLS: cannot load the certificate {opts.cert} / key {opts.key}: {e}"
        ) from None
    return ctx


def _subject(cert: dict | None) -> str:
    if not cert:
        return "?"
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}
    parts = [f"{short.get(k, k)}={v}" for rdn in cert.get("subject", ()) for k, v in rdn]
    return ",".join(parts) or "(empty subject)"


def _san(cert: dict | None, kind: str) -> list[str]:
    return [v.strip() for k, v in (cert or {}).get("subjectAltName", ()) if k == kind]


def _ip(text: str):
    a = ip_address(text.split("%", 1)[0])
    if a.version == 6 and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def server_identity_problem(cert: dict | None, name: str) -> str | None:
    """RFC 8210 §9 / RFC 6125 on top of OpenSSL's check: the reference identifier must equal
    a DNS-ID exactly (no wildcard), or an iPAddress entry for an IP literal."""
    if not cert:
        return "the cache sent no certificate"
    try:
        want = _ip(name)
    except ValueError:
        want = None
    if want is not None:
        for v in _san(cert, "IP Address"):
            with contextlib.suppress(ValueError):
                if _ip(v) == want:
                    return None
        return f"the cache's certificate ({_subject(cert)}) has no iPAddress {name}"
    norm = name.lower().rstrip(".")
    dns = _san(cert, "DNS")
    if any(d.lower().rstrip(".") == norm for d in dns):
        return None
    if any("*" in d for d in dns):
        return (
            f"the cache's certificate ({_subject(cert)}) matches {name} only through a "
            "wildcard DNS-ID, which RFC 8210 §9 does not allow"
        )
    return f"the cache's certificate ({_subject(cert)}) has no DNS-ID {name}"


def client_ip_problem(cert: dict | None, peer_ip: str) -> str | None:
    """RFC 8210 §9.2: the connection's source address must be one of the client
    certificate's subjectAltName iPAddress entries."""
    if not cert:
        return "no client certificate"
    ips = []
    for v in _san(cert, "IP Address"):
        with contextlib.suppress(ValueError):
            ips.append(_ip(v))
    if not ips:
        return (
            f"client certificate ({_subject(cert)}) has no subjectAltName iPAddress (RFC 8210 §9.2)"
        )
    try:
        peer = _ip(peer_ip)
    except ValueError:
        return f"cannot read the peer address {peer_ip!r}"
    if peer not in ips:
        return (
            f"source address {peer} is not in the client certificate's subjectAltName "
            f"iPAddress list ({', '.join(map(str, ips))}; {_subject(cert)})"
        )
    return None


# ---- client side ------------------------------------------------------------------------------


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
        return await _connect_tls(opts, host, port, protocol_factory)
    if opts.transport == "ssh":
        return await _connect_ssh(opts, host, port, protocol_factory)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(protocol_factory, host, port)
    return transport


async def _connect_tls(opts, host, port, protocol_factory):
    loop = asyncio.get_running_loop()
    ctx = client_tls_context(opts)
    name = opts.server_name or host
    where = f"{host}:{port}"
    try:
        transport, _ = await loop.create_connection(
            protocol_factory,
            host,
            port,
            ssl=ctx,
            server_hostname=name,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
        )
    except ssl.SSLCertVerificationError as e:
        raise TransportError(
            f"TLS: the certificate of {where} is not trusted ({e.verify_message.rstrip('.')}; CA file "
            f"{opts.ca or '(system CAs)'}, expected name {name}); not connecting"
        ) from None
    except ssl.SSLError as e:
        reason = str(e.reason or e)
        hint = (
            f" (the cache did not accept the router's certificate {opts.cert})"
            if "ALERT" in reason and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason)
            else ""
        )
        raise TransportError(f"TLS handshake with {where} failed: {reason}{hint}") from None
    problem = server_identity_problem(transport.get_extra_info("peercert"), name)
    if problem:
        transport.abort()
        raise TransportError(f"TLS: {where}: {problem}; not connecting")
    sslobj = transport.get_extra_info("ssl_object")
    log.info(
        "%s: %s established, cache certificate %s",
        where,
        sslobj.version() if sslobj is not None else "TLS",
        _subject(transport.get_extra_info("peercert")),
    )
    return transport


class _ChannelTransport:
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
def _ssh():
    """asyncssh and the session classes built on it (imported on first use)."""
    import asyncssh

    alog = logging.getLogger("asyncssh")
    if alog.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
        alog.setLevel(logging.WARNING)  # its INFO lines (every channel open/close) are noise

    class ClientSession(asyncssh.SSHClientSession):
        def __init__(self, protocol: asyncio.Protocol) -> None:
            self.protocol = protocol
            self.conn = None
            self.adapter: _ChannelTransport | None = None

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
        def __init__(self, listener: _SSHListener, server: Server) -> None:
            self.listener = listener
            self.server = server
            self.chan = None
            self.protocol = None
            self.adapter: _ChannelTransport | None = None

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
            self.adapter = _ChannelTransport(
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
        def __init__(self, listener: _SSHListener) -> None:
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


async def _connect_ssh(opts, host, port, protocol_factory):
    asyncssh, ClientSession, _ = _ssh()
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
    transport = _ChannelTransport(chan, conn, proto, close_conn_after=2.0)
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


# ---- cache side -------------------------------------------------------------------------------


class _Listener:
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


class _TLSListener(_Listener):
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
        proto = self.make_protocol(f"TLS, client certificate {_subject(cert)}")
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


class _SSHListener(_Listener):
    kind = "SSH"

    async def start(self) -> None:
        asyncssh, _, Server = _ssh()
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
) -> _TLSListener | _SSHListener:
    """Listen for routers over TLS or SSH.  ``make_protocol(via)`` makes the RTR protocol for
    one accepted, checked connection; ``on_event(kind, message, level)`` reports refusals."""
    lst: _TLSListener | _SSHListener = (
        _TLSListener(opts, make_protocol, on_event)
        if isinstance(opts, TLSServerOptions)
        else _SSHListener(opts, make_protocol, on_event)
    )
    await lst.start()
    return lst


# ---- command line -----------------------------------------------------------------------------


#: where a password comes from when no --ssh-password(-file) is given
CLIENT_PASSWORD_ENV = "ROV_ROUTER_SSH_PASSWORD"
SERVER_PASSWORD_ENV = "ROV_ROUTER_CACHE_SSH_PASSWORD"


def read_password_file(path: str | Path, what: str = "password file") -> str:
    """The first line of ``path`` (without its line end); raises ValueError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(
            f"cannot read the {what} {p}: {getattr(e, 'strerror', None) or e}"
        ) from None
    pw = text.splitlines()[0] if text.splitlines() else ""
    if not pw:
        raise ValueError(f"the {what} {p} is empty")
    with contextlib.suppress(OSError):
        if p.stat().st_mode & 0o077:
            _warn(f"{p} can be read by other users (chmod 600 it)")
    return pw


def password_from_args(value: str | None, file: str | None, env: str, flag: str) -> str | None:
    """A password from ``flag`` (warned about: ``ps`` shows it), ``flag``-file, or ``$env``."""
    if value is not None and file is not None:
        raise ValueError(f"{flag}: give the password or {flag}-file, not both")
    if file is not None:
        try:
            return read_password_file(file)
        except ValueError as e:
            raise ValueError(f"{flag}-file: {e}") from None
    if value is not None:
        _warn(
            f"{flag} on the command line is visible to every user of this machine (ps, "
            f"/proc); use {flag}-file FILE or the environment variable {env} instead"
        )
        return value
    return os.environ.get(env) or None


def _warn(msg: str) -> None:
    print(f"rov-router: warning: {msg}", file=sys.stderr, flush=True)


def add_client_arguments(parser) -> None:
    """--transport and its options (for `rtr` and `validate --cache`)."""
    g = parser.add_argument_group("transport to the cache (RFC 8210 §9)")
    g.add_argument(
        "--transport",
        choices=KINDS,
        default="tcp",
        help="tcp (default), tls (client certificate) or ssh (subsystem rpki-rtr)",
    )
    g.add_argument("--ca", metavar="FILE", help="TLS: CA file for the cache's certificate")
    g.add_argument("--cert", metavar="FILE", help="TLS: the router's client certificate")
    g.add_argument("--key", metavar="FILE", help="TLS: the client certificate's private key")
    g.add_argument(
        "--server-name", metavar="NAME", help="TLS: the cache's name to verify (default: HOST)"
    )
    g.add_argument("--ssh-user", metavar="USER", help="SSH: user name")
    g.add_argument("--ssh-key", metavar="FILE", help="SSH: private key file")
    g.add_argument(
        "--ssh-password",
        metavar="PASSWORD",
        help="SSH: password (visible to every user in ps: prefer --ssh-password-file or "
        f"${CLIENT_PASSWORD_ENV})",
    )
    g.add_argument(
        "--ssh-password-file",
        metavar="FILE",
        help=f"SSH: read the password from FILE (first line); or set ${CLIENT_PASSWORD_ENV}",
    )
    g.add_argument(
        "--known-hosts",
        metavar="FILE",
        help="SSH: known_hosts file holding the cache's host key (~/.ssh/known_hosts)",
    )
    g.add_argument(
        "--ssh-insecure-accept-unknown-host-key",
        action="store_true",
        help="SSH: connect even when the cache's host key is not in known_hosts (insecure)",
    )


def client_options_from_args(args) -> TransportOptions:
    """Raises ValueError naming the command-line option at fault."""

    def path(v):
        return Path(v) if v else None

    opts = TransportOptions(
        transport=args.transport,
        ca=path(args.ca),
        cert=path(args.cert),
        key=path(args.key),
        server_name=args.server_name,
        ssh_user=args.ssh_user,
        ssh_key=path(args.ssh_key),
        ssh_password=password_from_args(
            args.ssh_password, args.ssh_password_file, CLIENT_PASSWORD_ENV, "--ssh-password"
        ),
        known_hosts=path(args.known_hosts),
        ssh_insecure_accept_unknown_host_key=bool(args.ssh_insecure_accept_unknown_host_key),
    )
    p = opts.problem()
    if p:
        raise ValueError(f"--{p[0].replace('_', '-')}: {p[1]}")
    return opts


def add_server_arguments(parser) -> None:
    """TLS and SSH listeners of `cache`."""
    g = parser.add_argument_group("TLS and SSH listeners (RFC 8210 §9)")
    g.add_argument("--tls-listen", metavar="HOST:PORT", help="also serve RTR over TLS here")
    g.add_argument("--tls-cert", metavar="FILE", help="the cache's certificate")
    g.add_argument("--tls-key", metavar="FILE", help="its private key")
    g.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="CA that issues router certificates (a client certificate is required; its "
        "subjectAltName iPAddress must match the router's address)",
    )
    g.add_argument("--ssh-listen", metavar="HOST:PORT", help="also serve RTR over SSH here")
    g.add_argument("--ssh-host-key", metavar="FILE", help="the cache's SSH host key")
    g.add_argument("--ssh-authorized-keys", metavar="FILE", help="public keys allowed to log in")
    g.add_argument(
        "--ssh-user", metavar="USER", help="the only user accepted (with --ssh-password)"
    )
    g.add_argument(
        "--ssh-password",
        metavar="PASSWORD",
        help="password of --ssh-user (visible to every user in ps: prefer --ssh-password-file "
        f"or ${SERVER_PASSWORD_ENV})",
    )
    g.add_argument(
        "--ssh-password-file",
        metavar="FILE",
        help=f"read the password of --ssh-user from FILE; or set ${SERVER_PASSWORD_ENV}",
    )


def server_options_from_args(args) -> tuple[TLSServerOptions | None, SSHServerOptions | None]:
    """Raises ValueError naming the command-line option at fault."""

    def path(v):
        return Path(v) if v else None

    tls = ssh = None
    if args.tls_listen:
        try:
            host, port = parse_hostport(args.tls_listen, DEFAULT_PORTS["tls"])
        except ValueError as e:
            raise ValueError(f"--tls-listen: {e}") from None
        tls = TLSServerOptions(
            host, port, path(args.tls_cert), path(args.tls_key), path(args.tls_client_ca)
        )
        p = tls.problem()
        if p:
            raise ValueError(f"--tls-{p[0].replace('_', '-')}: {p[1]}")
    elif args.tls_cert or args.tls_key or args.tls_client_ca:
        raise ValueError("--tls-cert/--tls-key/--tls-client-ca need --tls-listen HOST:PORT")
    if args.ssh_listen:
        try:
            host, port = parse_hostport(args.ssh_listen, DEFAULT_PORTS["ssh"])
        except ValueError as e:
            raise ValueError(f"--ssh-listen: {e}") from None
        ssh = SSHServerOptions(
            host,
            port,
            path(args.ssh_host_key),
            path(args.ssh_authorized_keys),
            args.ssh_user,
            password_from_args(
                args.ssh_password, args.ssh_password_file, SERVER_PASSWORD_ENV, "--ssh-password"
            ),
        )
        p = ssh.problem()
        if p:
            raise ValueError(f"--ssh-{p[0].replace('_', '-')}: {p[1]}")
    elif (
        args.ssh_host_key
        or args.ssh_authorized_keys
        or args.ssh_user
        or args.ssh_password
        or args.ssh_password_file
    ):
        raise ValueError("the --ssh-* options of 'cache' need --ssh-listen HOST:PORT")
    return tls, ssh
