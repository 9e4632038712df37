"""Transport settings: the ``[[rpki]]`` transport keys of the router and the embedded cache's
TLS / SSH listener settings, with their consistency checks.  Pure data: the config loader and
the command line import this module only."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, fields
from ipaddress import ip_address
from pathlib import Path

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
            warn(f"{p} can be read by other users (chmod 600 it)")
    return pw


def warn(msg: str) -> None:
    print(f"rov-router: warning: {msg}", file=sys.stderr, flush=True)
