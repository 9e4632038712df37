"""Throwaway TLS PKI and SSH keys for the transport tests (made in tmp dirs at test time, never
committed; needs the ``cryptography`` package, a declared test dependency)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path


def _write_key(path: Path, key) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _cert(cn, key, issuer=None, *, ca=False, dns=(), ips=(), client=False):
    """A certificate for ``key``, signed by ``issuer`` = (cert, key), self-signed when None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    icert, ikey = issuer if issuer else (None, key)
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(icert.subject if icert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        sans = [x509.DNSName(d) for d in dns] + [
            x509.IPAddress(ipaddress.ip_address(i)) for i in ips
        ]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if icert is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()), False
        )
    return b.sign(ikey, hashes.SHA256())


def make_pki(d: Path) -> dict[str, Path]:
    """A CA with a cache certificate (iPAddress 127.0.0.1, DNS localhost) and router client
    certificates, a rogue CA, and the variants the refusal tests need."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def save(name, cert, k):
        out[name + ".crt"] = d / f"{name}.crt"
        out[name + ".crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[name + ".key"] = _write_key(d / f"{name}.key", k)

    ca_k, rogue_k = key(), key()
    ca = _cert("rov-router test CA", ca_k, ca=True)
    rogue = _cert("rogue CA", rogue_k, ca=True)
    save("ca", ca, ca_k)
    save("rogue_ca", rogue, rogue_k)
    for name, issuer, kw in (
        ("server", (ca, ca_k), {"dns": ["localhost"], "ips": ["127.0.0.1"]}),
        ("wildcard_server", (ca, ca_k), {"dns": ["*.rpki.test"]}),
        ("client", (ca, ca_k), {"ips": ["127.0.0.1"], "client": True}),
        ("client_wrong_ip", (ca, ca_k), {"ips": ["192.0.2.1"], "client": True}),
        ("client_no_ip", (ca, ca_k), {"dns": ["router.rpki.test"], "client": True}),
        ("client_rogue", (rogue, rogue_k), {"ips": ["127.0.0.1"], "client": True}),
    ):
        k = key()
        save(name, _cert(name, k, issuer, **kw), k)
    return out


def make_ssh_keys(d: Path) -> dict[str, Path]:
    """Cache host keys (ECDSA P-256 as SEC1 PEM, which StayRTR and asyncssh both read), a
    second host key (the 'impostor'), a router ed25519 key (OpenSSH format, as ssh-keygen
    writes it) and its authorized_keys file."""
    import asyncssh

    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in ("host", "other_host"):
        k = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
        out[name] = d / f"{name}.pem"
        k.write_private_key(str(out[name]), format_name="pkcs1-pem")
        out[name].chmod(0o600)
        out[name + ".pub"] = d / f"{name}.pub"
        k.write_public_key(str(out[name + ".pub"]))
    k = asyncssh.generate_private_key("ssh-ed25519")
    out["client"] = d / "client_ed25519"
    k.write_private_key(str(out["client"]))
    out["client"].chmod(0o600)
    out["authorized_keys"] = d / "authorized_keys"
    k.write_public_key(str(out["authorized_keys"]))
    return out


def known_hosts(path: Path, port: int, host_pub: Path) -> Path:
    path.write_text(f"[127.0.0.1]:{port} {host_pub.read_text().strip()}\n")
    return path
