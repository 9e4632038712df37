"""Secure-transport settings (RFC 8210 §9): [[rpki]] transport keys, command-line options,
TLS contexts and the identity checks of both ends (the throwaway PKI is made by
tests/support/pki.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from rov_router.cli import build_parser, main
from rov_router.commands.transport_args import client_options_from_args, server_options_from_args
from rov_router.config import ConfigError, load_config
from rov_router.rtr.transport.options import (
    SSHServerOptions,
    TLSServerOptions,
    TransportOptions,
    parse_hostport,
)
from rov_router.rtr.transport.tls import (
    client_ip_problem,
    client_tls_context,
    server_identity_problem,
    server_tls_context,
)
from tests.support.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


# ---- host:port --------------------------------------------------------------------------------


def test_parse_hostport():
    assert parse_hostport("127.0.0.1:3323") == ("127.0.0.1", 3323)
    assert parse_hostport("[::1]:324") == ("::1", 324)
    assert parse_hostport("cache.example", 324) == ("cache.example", 324)
    assert parse_hostport("[2001:db8::1]", 22) == ("2001:db8::1", 22)
    assert parse_hostport("2001:db8::1", 323) == ("2001:db8::1", 323)
    assert parse_hostport("cache.example:8282", 324) == ("cache.example", 8282)
    for bad in ("cache.example", "x:y", "1.2.3.4:99999", ":323"):
        with pytest.raises(ValueError):
            parse_hostport(bad)


# ---- config -----------------------------------------------------------------------------------


def _cfg(tmp_path: Path, rpki: str) -> Path:
    p = tmp_path / "router.toml"
    p.write_text('[router]\nasn = 65000\nrouter_id = "127.0.0.1"\n\n[[rpki]]\n' + rpki)
    return p


def test_config_tls_paths_relative_to_file_and_default_port(tmp_path, pki):
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.crt", "client.crt", "client.key"):
        (certs / name).write_bytes(pki[name].read_bytes())
    cfg = load_config(
        _cfg(
            tmp_path,
            'cache = "cache.example"\ntransport = "tls"\nca = "certs/ca.crt"\n'
            'cert = "certs/client.crt"\nkey = "certs/client.key"\n',
        )
    )
    (src,) = cfg.rpki
    assert src.cache == ("cache.example", 324)  # rpki-rtr-tls
    assert src.ca == (certs / "ca.crt").resolve() and src.key == (certs / "client.key").resolve()
    o = src.transport_options()
    assert o.transport == "tls" and o.server_name is None and o.cert == src.cert
    assert o.problem() is None


def test_config_ssh_and_tcp_default_ports(tmp_path):
    (tmp_path / "id").write_text("x")
    (tmp_path / "kh").write_text("")
    cfg = load_config(
        _cfg(
            tmp_path,
            'cache = "[2001:db8::1]"\ntransport = "ssh"\nssh_user = "rpki"\nssh_key = "id"\n'
            'known_hosts = "kh"\n\n[[rpki]]\ncache = "192.0.2.1"\ntransport = "tcp"\n',
        )
    )
    ssh, tcp = cfg.rpki
    assert ssh.cache == ("2001:db8::1", 22) and ssh.ssh_key == (tmp_path / "id").resolve()
    assert ssh.transport_options().describe() == "SSH as rpki"
    assert tcp.cache == ("192.0.2.1", 323) and tcp.transport_options().transport == "tcp"


def test_config_without_transport_still_needs_the_port(tmp_path):
    with pytest.raises(ConfigError, match=r"router.toml:6: rpki\[0\].cache: expected HOST:PORT"):
        load_config(_cfg(tmp_path, 'cache = "cache.example"\n'))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('transport = "quic"\n', r":7: rpki\[0\].transport: 'quic' is not one of tcp, tls, ssh"),
        (
            'transport = "tls"\ncert = "nope.crt"\nkey = "nope.key"\n',
            r":8: rpki\[0\].cert: no such",
        ),
        ('transport = "tls"\n', r":5: rpki\[0\].cert: TLS needs the router's client certificate"),
        ('ca = "x"\n', r":7: rpki\[0\].ca: only used with transport 'tls'"),
        ('transport = "ssh"\nssh_password = "p"\n', r":5: rpki\[0\].ssh_user: SSH needs a user"),
        ('transport = "ssh"\nssh_user = "u"\n', r":5: rpki\[0\].ssh_key: SSH needs a private key"),
        (
            'transport = "ssh"\nssh_user = "u"\nssh_password = "p"\nknown_hosts = "none"\n',
            r":10: rpki\[0\].known_hosts: no such file: .*none",
        ),
        (
            'transport = "tls"\nssh_user = "u"\n',
            r":8: rpki\[0\].ssh_user: only used with transport 'ssh'",
        ),
        (
            'transport = "ssh"\nssh_insecure_accept_unknown_host_key = 1\n',
            r":8: rpki\[0\].ssh_insecure_accept_unknown_host_key: expected true",
        ),
    ],
)
def test_config_transport_errors_name_file_line_key(tmp_path, body, where):
    with pytest.raises(ConfigError, match=r"router.toml" + where):
        load_config(_cfg(tmp_path, 'cache = "127.0.0.1:3323"\n' + body))


def test_config_transport_keys_not_for_vrp_files(tmp_path):
    (tmp_path / "v.json").write_text('{"roas": []}')
    with pytest.raises(ConfigError, match=r":7: rpki\[0\].transport: only for a 'cache' source"):
        load_config(_cfg(tmp_path, 'vrps = "v.json"\ntransport = "tls"\n'))


def test_ssh_insecure_option_allows_missing_known_hosts(tmp_path):
    o = TransportOptions(
        transport="ssh",
        ssh_user="u",
        ssh_password="p",
        known_hosts=tmp_path / "absent",
        ssh_insecure_accept_unknown_host_key=True,
    )
    assert o.problem() is None
    o.ssh_insecure_accept_unknown_host_key = False
    assert o.problem()[0] == "known_hosts"


# ---- command line -----------------------------------------------------------------------------


def test_cli_client_options(pki):
    args = build_parser().parse_args(
        [
            "rtr",
            "--cache",
            "127.0.0.1:324",
            "--transport",
            "tls",
            "--ca",
            str(pki["ca.crt"]),
            "--cert",
            str(pki["client.crt"]),
            "--key",
            str(pki["client.key"]),
            "--server-name",
            "cache.example",
        ]
    )
    o = client_options_from_args(args)
    assert (o.transport, o.server_name, o.cert) == ("tls", "cache.example", pki["client.crt"])
    args = build_parser().parse_args(["validate", "--cache", "h:1", "--transport", "tls"])
    with pytest.raises(ValueError, match="--cert: TLS needs the router's client certificate"):
        client_options_from_args(args)
    args = build_parser().parse_args(["rtr", "--cache", "h:1", "--ssh-user", "u"])
    with pytest.raises(ValueError, match="--ssh-user: only used with transport 'ssh'"):
        client_options_from_args(args)


def test_cli_errors_exit_2_with_the_option_named(tmp_path, capsys):
    rc = main(["rtr", "--cache", "127.0.0.1:1", "--transport", "ssh", "--ssh-user", "u"])
    assert rc == 2
    assert "--ssh-key: SSH needs a private key file or a password" in capsys.readouterr().err
    rc = main(["cache", "--vrps", "x.json", "--tls-listen", "127.0.0.1:0"])
    assert rc == 2
    assert "--tls-cert: required for a TLS listener" in capsys.readouterr().err
    rc = main(["cache", "--vrps", "x.json", "--ssh-host-key", str(tmp_path)])
    assert rc == 2
    assert "need --ssh-listen" in capsys.readouterr().err


def test_cli_server_options(tmp_path, pki):
    hk = tmp_path / "hk"
    hk.write_text("x")
    args = build_parser().parse_args(
        [
            "cache",
            "--vrps",
            "v.json",
            "--tls-listen",
            "127.0.0.1",
            "--tls-cert",
            str(pki["server.crt"]),
            "--tls-key",
            str(pki["server.key"]),
            "--tls-client-ca",
            str(pki["ca.crt"]),
            "--ssh-listen",
            "127.0.0.1:2222",
            "--ssh-host-key",
            str(hk),
            "--ssh-user",
            "rpki",
            "--ssh-password",
            "secret",
        ]
    )
    tls, ssh = server_options_from_args(args)
    assert (tls.host, tls.port) == ("127.0.0.1", 324)
    assert (ssh.port, ssh.user, ssh.authorized_keys) == (2222, "rpki", None)
    assert SSHServerOptions("h", 1, hk).problem()[0] == "authorized_keys"
    assert SSHServerOptions("h", 1, hk, password="p").problem()[0] == "user"
    assert TLSServerOptions("h", 1, hk, hk, tmp_path / "no").problem()[0] == "client_ca"


# ---- TLS contexts and identity checks ---------------------------------------------------------


def test_client_context_is_strict(pki):
    o = TransportOptions(
        transport="tls", ca=pki["ca.crt"], cert=pki["client.crt"], key=pki["client.key"]
    )
    ctx = client_tls_context(o)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.hostname_checks_common_name is False
    o.key = pki["server.key"]  # not the certificate's key
    with pytest.raises(OSError, match="cannot load the client certificate"):
        client_tls_context(o)


def test_server_context_requires_client_certificates(pki):
    ctx = server_tls_context(
        TLSServerOptions("127.0.0.1", 0, pki["server.crt"], pki["server.key"], pki["ca.crt"])
    )
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def _peercert(*sans, cn="x"):
    return {"subject": ((("commonName", cn),),), "subjectAltName": sans}


def test_server_identity_dns_id_exact_no_wildcard_no_cn():
    assert server_identity_problem(_peercert(("DNS", "Cache.Example")), "cache.example") is None
    assert server_identity_problem(_peercert(("IP Address", "192.0.2.7")), "192.0.2.7") is None
    p = server_identity_problem(_peercert(("DNS", "*.example")), "cache.example")
    assert "wildcard" in p and "RFC 8210" in p
    assert "no DNS-ID" in server_identity_problem(_peercert(cn="cache.example"), "cache.example")
    assert "no iPAddress" in server_identity_problem(_peercert(("DNS", "a")), "192.0.2.7")
    v6 = _peercert(("IP Address", "2001:DB8:0:0:0:0:0:1\n"))
    assert server_identity_problem(v6, "2001:db8::1") is None


def test_client_ip_check():
    c = _peercert(("IP Address", "192.0.2.1"), ("IP Address", "2001:DB8:0:0:0:0:0:2"))
    assert client_ip_problem(c, "192.0.2.1") is None
    assert client_ip_problem(c, "::ffff:192.0.2.1") is None  # dual-stack listener
    assert client_ip_problem(c, "2001:db8::2") is None
    p = client_ip_problem(c, "127.0.0.1")
    assert "127.0.0.1 is not in the client certificate's subjectAltName iPAddress" in p
    assert "192.0.2.1" in p
    assert "no subjectAltName iPAddress" in client_ip_problem(_peercert(("DNS", "r")), "1.2.3.4")
    assert client_ip_problem(None, "1.2.3.4") == "no client certificate"


# ---- secrets off the command line -------------------------------------------------------------


def _ssh_rtr(*extra: str):
    return build_parser().parse_args(
        ["rtr", "--cache", "h:22", "--transport", "ssh", "--ssh-user", "rpki", *extra]
    )


def test_ssh_password_from_a_file_or_the_environment(tmp_path, monkeypatch, capsys):
    kh = tmp_path / "kh"
    kh.write_text("")
    pw = tmp_path / "pw"
    pw.write_text("s3cret with spaces\n")
    pw.chmod(0o600)
    o = client_options_from_args(_ssh_rtr("--ssh-password-file", str(pw), "--known-hosts", str(kh)))
    assert o.ssh_password == "s3cret with spaces"
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("ROV_ROUTER_SSH_PASSWORD", "from-env")
    o = client_options_from_args(_ssh_rtr("--known-hosts", str(kh)))
    assert o.ssh_password == "from-env" and capsys.readouterr().err == ""
    # the flag still works, with a warning that everyone can read it
    o = client_options_from_args(_ssh_rtr("--ssh-password", "visible", "--known-hosts", str(kh)))
    assert o.ssh_password == "visible"
    err = capsys.readouterr().err
    assert "--ssh-password on the command line is visible to every user" in err
    assert "--ssh-password-file" in err and "ROV_ROUTER_SSH_PASSWORD" in err
    with pytest.raises(ValueError, match="not both"):
        client_options_from_args(_ssh_rtr("--ssh-password", "a", "--ssh-password-file", str(pw)))
    with pytest.raises(ValueError, match=r"--ssh-password-file: cannot read the password file"):
        client_options_from_args(_ssh_rtr("--ssh-password-file", str(tmp_path / "nope")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        client_options_from_args(_ssh_rtr("--ssh-password-file", str(tmp_path / "empty")))


def test_cache_listener_password_from_a_file_or_the_environment(tmp_path, monkeypatch, capsys):
    hk = tmp_path / "hk"
    hk.write_text("x")
    pw = tmp_path / "pw"
    pw.write_text("listener-secret\n")
    pw.chmod(0o644)
    base = ["cache", "--vrps", "v.json", "--ssh-listen", "127.0.0.1:2222"]
    base += ["--ssh-host-key", str(hk), "--ssh-user", "rpki"]
    _, ssh = server_options_from_args(
        build_parser().parse_args([*base, "--ssh-password-file", str(pw)])
    )
    assert ssh.password == "listener-secret"
    assert "can be read by other users" in capsys.readouterr().err
    monkeypatch.setenv("ROV_ROUTER_CACHE_SSH_PASSWORD", "env-secret")
    _, ssh = server_options_from_args(build_parser().parse_args(base))
    assert ssh.password == "env-secret"


def test_config_ssh_password_file(tmp_path):
    (tmp_path / "kh").write_text("")
    (tmp_path / "pw").write_text("cfg-secret\n")
    cfg = load_config(
        _cfg(
            tmp_path,
            'cache = "127.0.0.1:22"\ntransport = "ssh"\nssh_user = "rpki"\n'
            'ssh_password_file = "pw"\nknown_hosts = "kh"\n',
        )
    )
    assert cfg.rpki[0].ssh_password == "cfg-secret"
    with pytest.raises(ConfigError, match=r"rpki\[0\].ssh_password_file: cannot read"):
        load_config(
            _cfg(
                tmp_path,
                'cache = "127.0.0.1:22"\ntransport = "ssh"\nssh_user = "rpki"\n'
                'ssh_password_file = "missing"\nknown_hosts = "kh"\n',
            )
        )
