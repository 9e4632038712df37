"""TLS (RFC 8210 §9, port 324): contexts for both ends, the identity checks OpenSSL does not
make (RFC 6125 DNS-ID / iPAddress for the cache, §9.2 source address for the router), and the
router's TLS connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from ipaddress import ip_address

from .options import HANDSHAKE_TIMEOUT, TLSServerOptions, TransportError, TransportOptions

log = logging.getLogger("rov_router.rtr")


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


def cert_subject(cert: dict | None) -> str:
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
        return f"the cache's certificate ({cert_subject(cert)}) has no iPAddress {name}"
    norm = name.lower().rstrip(".")
    dns = _san(cert, "DNS")
    if any(d.lower().rstrip(".") == norm for d in dns):
        return None
    if any("*" in d for d in dns):
        return (
            f"the cache's certificate ({cert_subject(cert)}) matches {name} only through a "
            "wildcard DNS-ID, which RFC 8210 §9 does not allow"
        )
    return f"the cache's certificate ({cert_subject(cert)}) has no DNS-ID {name}"


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
        return f"client certificate ({cert_subject(cert)}) has no subjectAltName iPAddress (RFC 8210 §9.2)"
    try:
        peer = _ip(peer_ip)
    except ValueError:
        return f"cannot read the peer address {peer_ip!r}"
    if peer not in ips:
        return (
            f"source address {peer} is not in the client certificate's subjectAltName "
            f"iPAddress list ({', '.join(map(str, ips))}; {cert_subject(cert)})"
        )
    return None


async def connect_tls(opts, host, port, protocol_factory):
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
        cert_subject(transport.get_extra_info("peercert")),
    )
    return transport
