"""Command-line options of the RTR transports: ``--transport`` and its TLS / SSH options for
the router side (``rtr``, ``validate --cache``), the TLS / SSH listeners of ``cache``, and where
SSH passwords come from."""

from __future__ import annotations

import os
from pathlib import Path

from ..rtr.transport.options import (
    DEFAULT_PORTS,
    KINDS,
    SSHServerOptions,
    TLSServerOptions,
    TransportOptions,
    parse_hostport,
    read_password_file,
    warn,
)

#: where a password comes from when no --ssh-password(-file) is given
CLIENT_PASSWORD_ENV = "ROV_ROUTER_SSH_PASSWORD"
SERVER_PASSWORD_ENV = "ROV_ROUTER_CACHE_SSH_PASSWORD"


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
        warn(
            f"{flag} on the command line is visible to every user of this machine (ps, "
            f"/proc); use {flag}-file FILE or the environment variable {env} instead"
        )
        return value
    return os.environ.get(env) or None


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
