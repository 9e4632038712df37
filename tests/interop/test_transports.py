"""RTR over TLS and SSH (RFC 8210 §9) with real peers on 127.0.0.1: our client against StayRTR's
TLS and SSH listeners and against our own cache; refused host keys and certificates; RTRlib's
rtrclient over SSH against our cache.  Credentials are made in tmp dirs at test time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.procs import free_port, port_listening, stop_child
from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP, load_vrp_file
from rov_router.rtr import pdu as P
from rov_router.rtr import session as S
from rov_router.rtr.cache import CacheState
from rov_router.rtr.client import RTRClient
from rov_router.rtr.server import RTRServer
from rov_router.rtr.transport.options import SSHServerOptions, TLSServerOptions, TransportOptions
from tests.support.env import DATA, need_tool
from tests.support.pki import known_hosts, make_pki, make_ssh_keys

pytestmark = pytest.mark.interop
SMALL = DATA / "small_vrps.json"
EXPECTED = load_vrp_file(SMALL, ignore_expires=True).vrps  # 37 VRPs


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    d = tmp_path_factory.mktemp("creds")
    c: dict = {**make_pki(d / "pki"), **{f"ssh_{k}": v for k, v in make_ssh_keys(d).items()}}
    c["password"] = secrets.token_urlsafe(12)
    c["dir"] = d
    return c


def _wait_ports(proc, ports, log: Path, what: str, pattern: bytes | None = None) -> None:
    deadline = time.monotonic() + 30
    while not (
        all(port_listening(p) for p in ports) and (pattern is None or pattern in log.read_bytes())
    ):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


class Peer:
    def __init__(self, cmd: list[str], ports: list[int], log: Path, what: str, **kw) -> None:
        self.log = log
        self._logf = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT, **kw)
        try:
            _wait_ports(self.proc, ports, log, what)
        except BaseException:
            self.stop()
            raise

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_child(self.proc)
        self._logf.close()


def _stayrtr_secure_cmd(
    exe: str, vrp_file: Path, tcp: int, tls: int, ssh: int, creds: dict
) -> list[str]:
    """StayRTR serving VRP_FILE (RTR v1) on 127.0.0.1 over TCP, TLS and SSH (public key)."""
    return [
        exe,
        "-bind",
        f"127.0.0.1:{tcp}",
        "-cache",
        str(vrp_file),
        "-checktime=false",
        "-refresh",
        "86400",
        "-metrics.addr",
        "",
        "-protocol",
        "1",
        "-tls.bind",
        f"127.0.0.1:{tls}",
        "-tls.cert",
        str(creds["server.crt"]),
        "-tls.key",
        str(creds["server.key"]),
        "-ssh.bind",
        f"127.0.0.1:{ssh}",
        "-ssh.key",
        str(creds["ssh_host"]),
        "-ssh.method.key=true",
        "-ssh.auth.key.file",
        str(creds["ssh_authorized_keys"]),
    ]


@pytest.fixture(scope="module")
def stayrtr_secure(creds, tmp_path_factory):
    """StayRTR serving the small set over TCP, TLS and SSH (key and password)."""
    exe = need_tool("stayrtr")
    d = tmp_path_factory.mktemp("stayrtr")
    tcp, tls, ssh = free_port(), free_port(), free_port()
    env = {**os.environ, "STAYRTR_SSH_PASSWORD": creds["password"]}
    cmd = [
        *_stayrtr_secure_cmd(exe, SMALL, tcp, tls, ssh, creds),
        "-loglevel",
        "info",
        "-ssh.method.password=true",
        "-ssh.auth.user",
        "rpki",
    ]
    log = d / "stayrtr.log"
    logf = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ports(proc, [tcp, tls, ssh], log, "stayrtr", b"New update")
        yield {
            "tls": tls,
            "ssh": ssh,
            "log": log,
            "known_hosts": known_hosts(d / "known_hosts", ssh, creds["ssh_host.pub"]),
        }
    finally:
        stop_child(proc)
        logf.close()


class OurCache(Peer):
    """`rov-router cache` with TLS (client certificate required) and SSH listeners."""

    def __init__(self, creds: dict, d: Path, *extra: str) -> None:
        self.tcp, self.tls, self.ssh = free_port(), free_port(), free_port()
        self.known_hosts = known_hosts(
            d / f"known_hosts-{self.ssh}", self.ssh, creds["ssh_host.pub"]
        )
        cmd = [
            sys.executable,
            "-m",
            "rov_router.cli",
            "cache",
            "--vrps",
            str(SMALL),
            "--listen",
            f"127.0.0.1:{self.tcp}",
            "--session-file",
            str(d / f"session-{self.tcp}"),
            "--tls-listen",
            f"127.0.0.1:{self.tls}",
            "--tls-cert",
            str(creds["server.crt"]),
            "--tls-key",
            str(creds["server.key"]),
            "--tls-client-ca",
            str(creds["ca.crt"]),
            "--ssh-listen",
            f"127.0.0.1:{self.ssh}",
            "--ssh-host-key",
            str(creds["ssh_host"]),
            "--ssh-authorized-keys",
            str(creds["ssh_authorized_keys"]),
            "--ssh-user",
            "rpki",
            "--ssh-password",
            creds["password"],
            "--json",
            *extra,
        ]
        super().__init__(cmd, [self.tcp, self.tls, self.ssh], d / f"cache-{self.tcp}.log", "cache")

    def messages(self) -> list[str]:
        return [
            json.loads(line).get("message", "")
            for line in self.text().splitlines()
            if line.startswith("{")
        ]

    def wait_for(self, pattern: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages():
                if re.search(pattern, m):
                    return m
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the cache log:\n{self.text()[-3000:]}")


@pytest.fixture
def our_cache(creds, tmp_path):
    started: list[OurCache] = []

    def start(*extra: str) -> OurCache:
        c = OurCache(creds, tmp_path, *extra)
        started.append(c)
        return c

    yield start
    for c in reversed(started):
        c.stop()


# ---- client helpers ---------------------------------------------------------------------------


def tls_opts(creds, client: str = "client", ca: str = "ca.crt", **kw) -> TransportOptions:
    return TransportOptions(
        transport="tls",
        ca=creds[ca],
        cert=creds[f"{client}.crt"],
        key=creds[f"{client}.key"],
        **kw,
    )


def ssh_opts(creds, kh: Path, *, key: bool = True, password: bool = False, **kw):
    return TransportOptions(
        transport="ssh",
        ssh_user="rpki",
        ssh_key=creds["ssh_client"] if key else None,
        ssh_password=creds["password"] if password else None,
        known_hosts=kh,
        **kw,
    )


def sync(port: int, opts: TransportOptions, timeout: float = 20) -> set[VRP]:
    async def run():
        store = VRPStore()
        client = RTRClient("127.0.0.1", port, store, transport=opts, max_backoff=0.5, max_version=1)
        task = asyncio.ensure_future(client.run())
        try:
            await client.wait_synced(timeout)
        except TimeoutError:
            raise AssertionError(f"no sync: {client.last_error}") from None
        finally:
            client.stop()
            await task
        return set(store.iter_vrps())

    return asyncio.run(run())


def refused(port: int, opts: TransportOptions, timeout: float = 10) -> tuple[str, int, int]:
    """Run a client until its first failed attempt: (error, VRPs loaded, RTR connections)."""

    async def run():
        store = VRPStore()
        client = RTRClient("127.0.0.1", port, store, transport=opts, max_backoff=0.5)
        task = asyncio.ensure_future(client.run())
        deadline = time.monotonic() + timeout
        while client.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        client.stop()
        await task
        assert client.last_error, "the client neither failed nor stopped"
        return client.last_error, store.vrp_count(), client.connects

    return asyncio.run(run())


# ---- our client against StayRTR ---------------------------------------------------------------


@pytest.mark.parametrize("auth", ["key", "password"])
def test_our_client_ssh_against_stayrtr(stayrtr_secure, creds, auth):
    opts = ssh_opts(
        creds, stayrtr_secure["known_hosts"], key=auth == "key", password=auth == "password"
    )
    got = sync(stayrtr_secure["ssh"], opts)
    assert len(got) == 37 and got == EXPECTED


def test_our_client_tls_with_client_cert_against_stayrtr(stayrtr_secure, creds):
    # StayRTR 0.5.1 does not ask for a client certificate; ours is presented all the same
    got = sync(stayrtr_secure["tls"], tls_opts(creds))
    assert len(got) == 37 and got == EXPECTED


def test_wrong_and_unknown_ssh_host_key_refused(stayrtr_secure, creds, tmp_path):
    port = stayrtr_secure["ssh"]
    wrong = known_hosts(tmp_path / "kh_wrong", port, creds["ssh_other_host.pub"])
    err, vrps, conns = refused(port, ssh_opts(creds, wrong))
    assert f"host key of 127.0.0.1:{port} does not match" in err and str(wrong) in err
    assert "not connecting" in err and (vrps, conns) == (0, 0)

    unknown = tmp_path / "kh_empty"
    unknown.write_text("")
    err, vrps, conns = refused(port, ssh_opts(creds, unknown))
    assert f"host key of 127.0.0.1:{port} is unknown: {unknown} has no entry" in err
    assert (vrps, conns) == (0, 0)
    # only an explicit insecure option connects to an unknown key ...
    opts = ssh_opts(creds, unknown, ssh_insecure_accept_unknown_host_key=True)
    assert sync(port, opts) == EXPECTED
    # ... and it never overrides a recorded key that does not match
    opts = ssh_opts(creds, wrong, ssh_insecure_accept_unknown_host_key=True)
    err, vrps, _ = refused(port, opts)
    assert "does not match" in err and vrps == 0


def test_untrusted_tls_certificate_refused(stayrtr_secure, creds):
    port = stayrtr_secure["tls"]
    err, vrps, conns = refused(port, tls_opts(creds, ca="rogue_ca.crt"))
    assert f"TLS: the certificate of 127.0.0.1:{port} is not trusted" in err
    assert "unable to get local issuer certificate" in err and str(creds["rogue_ca.crt"]) in err
    assert (vrps, conns) == (0, 0)
    # a trusted certificate for another name is refused too (RFC 6125 reference identifier)
    err, vrps, conns = refused(port, tls_opts(creds, server_name="cache.rpki.test"))
    assert "not trusted" in err and "cache.rpki.test" in err and (vrps, conns) == (0, 0)


def test_wildcard_dns_id_refused(our_cache, creds):
    """OpenSSL accepts *.rpki.test for cache.rpki.test; RFC 8210 §9 does not."""
    cache = our_cache(
        "--tls-cert",
        str(creds["wildcard_server.crt"]),
        "--tls-key",
        str(creds["wildcard_server.key"]),
    )
    err, vrps, conns = refused(cache.tls, tls_opts(creds, server_name="cache.rpki.test"))
    assert "matches cache.rpki.test only through a wildcard DNS-ID" in err
    assert (vrps, conns) == (0, 0)


# ---- our client against our cache ---------------------------------------------------------------


def test_our_client_tls_against_our_cache(our_cache, creds):
    cache = our_cache()
    assert sync(cache.tls, tls_opts(creds)) == EXPECTED
    cache.wait_for(r"127\.0\.0\.1:\d+: connected over TLS, client certificate CN=client")


@pytest.mark.parametrize("auth", ["key", "password"])
def test_our_client_ssh_against_our_cache(our_cache, creds, auth):
    cache = our_cache()
    opts = ssh_opts(creds, cache.known_hosts, key=auth == "key", password=auth == "password")
    assert sync(cache.ssh, opts) == EXPECTED
    cache.wait_for(r"127\.0\.0\.1:\d+: connected over SSH as rpki")


def test_our_cache_refuses_bad_client_certificates_and_ssh_logins(our_cache, creds, tmp_path):
    cache = our_cache()
    # the source address is not in the certificate's iPAddress list (RFC 8210 §9.2)
    _, vrps, _ = refused(cache.tls, tls_opts(creds, client="client_wrong_ip"))
    assert vrps == 0
    cache.wait_for(
        r"TLS client refused: source address 127\.0\.0\.1 is not in the client certificate's "
        r"subjectAltName iPAddress list \(192\.0\.2\.1"
    )
    _, vrps, _ = refused(cache.tls, tls_opts(creds, client="client_no_ip"))
    assert vrps == 0
    cache.wait_for(r"TLS client refused: client certificate .* has no subjectAltName iPAddress")
    # a certificate from another CA
    _, vrps, _ = refused(cache.tls, tls_opts(creds, client="client_rogue"))
    assert vrps == 0
    cache.wait_for(
        r"TLS handshake failed: client certificate not trusted \(unable to get local issuer "
        r"certificate; client CA file .*ca\.crt\)"
    )
    # no client certificate at all (a plain TLS client; ours always presents one)
    ctx = ssl.create_default_context(cafile=str(creds["ca.crt"]))
    with (
        socket.create_connection(("127.0.0.1", cache.tls), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        contextlib.suppress(ssl.SSLError, OSError),
    ):
        tls.sendall(b"\x01\x02\x00\x00\x00\x00\x00\x08")  # a Reset Query
        assert tls.recv(100) == b""
    cache.wait_for(r"TLS handshake failed: the router sent no client certificate")
    # a wrong password
    opts = ssh_opts(creds, cache.known_hosts, key=False, password=True)
    opts.ssh_password = "wrong"
    err, vrps, _ = refused(cache.ssh, opts)
    assert f"127.0.0.1:{cache.ssh} refused authentication as 'rpki'" in err and vrps == 0
    cache.wait_for(r"SSH connection closed without successful authentication .*wrong password")
    assert not any("connected over" in m for m in cache.messages())


def test_notify_delta_and_restart_over_tls_and_ssh_in_process(creds, tmp_path):
    """RTRServer (in-process) with TLS and SSH listeners: a change reaches both routers as
    Serial Notify + delta, and a stopping cache's Error Report 12 arrives before the close."""
    small = load_vrp_file(SMALL, ignore_expires=True)
    added = VRP.parse("203.0.113.0/24", 24, 64999)

    async def run():
        cache = CacheState(refresh=3600, retry=600, expire=7200)
        cache.set_data(small.vrps, small.aspas)
        server = RTRServer(
            cache,
            "127.0.0.1",
            0,
            notify_interval=0,
            on_event=lambda ev: None,
            tls=TLSServerOptions(
                "127.0.0.1", 0, creds["server.crt"], creds["server.key"], creds["ca.crt"]
            ),
            ssh=SSHServerOptions(
                "127.0.0.1", 0, creds["ssh_host"], creds["ssh_authorized_keys"], "rpki"
            ),
        )
        await server.start()
        kh = known_hosts(tmp_path / "kh", server.ssh.port, creds["ssh_host.pub"])
        clients = []
        for port, opts in (
            (server.tls.port, tls_opts(creds)),
            (server.ssh.port, ssh_opts(creds, kh)),
        ):
            evs: list = []
            c = RTRClient(
                "127.0.0.1", port, VRPStore(), transport=opts, on_event=evs.append, max_backoff=0.5
            )
            clients.append((c, evs, asyncio.ensure_future(c.run())))
        try:
            for c, _, _ in clients:
                await c.wait_synced(20)
            cache.set_data(small.vrps | {added}, small.aspas)
            deadline = time.monotonic() + 20
            while not all(added in set(c.store.iter_vrps()) for c, _, _ in clients):
                assert time.monotonic() < deadline, [c.last_error for c, _, _ in clients]
                await asyncio.sleep(0.02)
            await server.stop(P.ErrorCode.CACHE_RESTART, "restarting")
            deadline = time.monotonic() + 10
            while not all(
                any(isinstance(e, S.ErrorReceived) and e.code == 12 for e in evs)
                for _, evs, _ in clients
            ):
                assert time.monotonic() < deadline, "no Error Report 12"
                await asyncio.sleep(0.02)
        finally:
            for c, _, task in clients:
                c.stop()
                await task
            await server.close()
        for c, evs, _ in clients:
            assert any(isinstance(e, S.NotifyReceived) for e in evs)
            # the restart keeps the data until Expire (8210bis §8.5)
            assert set(c.store.iter_vrps()) == small.vrps | {added}

    asyncio.run(run())


def test_cli_rtr_and_validate_over_ssh_and_tls(our_cache, creds):
    cache = our_cache()
    cli = [sys.executable, "-m", "rov_router.cli"]
    r = subprocess.run(
        [
            *cli,
            "rtr",
            "--once",
            "--json",
            "--timeout",
            "20",
            "--cache",
            f"127.0.0.1:{cache.ssh}",
            "--transport",
            "ssh",
            "--ssh-user",
            "rpki",
            "--ssh-key",
            str(creds["ssh_client"]),
            "--known-hosts",
            str(cache.known_hosts),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert any('"vrps": 37' in line for line in r.stdout.splitlines()), r.stdout[-2000:]
    r = subprocess.run(
        [
            *cli,
            "validate",
            "198.51.100.0/24",
            "64497",
            "--cache",
            f"127.0.0.1:{cache.tls}",
            "--transport",
            "tls",
            "--ca",
            str(creds["ca.crt"]),
            "--cert",
            str(creds["client.crt"]),
            "--key",
            str(creds["client.key"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\t")[:3] == ["198.51.100.0/24", "AS64497", "valid"], r.stdout


# ---- RTRlib rtrclient over SSH against our cache ----------------------------------------------


def _rtrclient_table(path: Path) -> set[VRP]:
    out = set()
    for line in path.read_text().splitlines():
        if line.count(",") != 3:
            continue
        addr, plen, maxlen, asn = (x.strip() for x in line.split(","))
        out.add(VRP.parse(f"{addr}/{plen}", int(maxlen), int(asn) & 0xFFFFFFFF))
    return out


@pytest.mark.parametrize("auth", ["key", "password"])
def test_rtrclient_over_ssh_against_our_cache(our_cache, creds, tmp_path, auth):
    exe = need_tool("rtrclient")
    cache = our_cache()
    out = tmp_path / f"rtrclient-{auth}.csv"
    # An existing file is taken as the private key; -w: the credential is a password.
    # (RTRlib 0.8's -r, "force key authentication", makes it try a password instead.)
    flags, cred = ([], str(creds["ssh_client"])) if auth == "key" else (["-w"], creds["password"])
    cmd = [exe, "-e", "-t", "csv", "-o", str(out), "ssh", *flags, "127.0.0.1", str(cache.ssh)]
    cmd += ["rpki", cred]
    try:
        # on failure rtrclient waits for its retry interval (600 s) instead of exiting
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"rtrclient did not sync: {(e.stderr or b'')[-2000:]!r}") from None
    assert r.returncode == 0, (r.stdout[-1000:], r.stderr[-2000:])
    assert _rtrclient_table(out) == EXPECTED, r.stderr[-2000:]
    cache.wait_for(r"connected over SSH as rpki")


# ---- real-size data over TLS and SSH -----------------------------------------------------------

PREPDEV = "vrps/rpki-client_ripe-prepdev_20230504.json.xz"
PREPDEV_VRPS = 424_223


@pytest.fixture(scope="module")
def prepdev_json(tmp_path_factory):
    """The 424k RIPE prepdev export without its (past) 'expires' times, as StayRTR reads it."""
    import lzma

    from tests.support.env import need_shared

    src = need_shared(PREPDEV)
    with lzma.open(src) as f:
        doc = json.loads(f.read())
    for r in doc["roas"]:
        r.pop("expires", None)
    doc.pop("provider_authorizations", None)  # StayRTR 0.5.1's draft-10 ASPA: not the point here
    path = tmp_path_factory.mktemp("prepdev") / "prepdev.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def stayrtr_big(creds, prepdev_json, tmp_path_factory):
    """StayRTR serving the 424k set over TLS and SSH (public key)."""
    exe = need_tool("stayrtr")
    d = tmp_path_factory.mktemp("stayrtr-big")
    tcp, tls, ssh = free_port(), free_port(), free_port()
    cmd = _stayrtr_secure_cmd(exe, prepdev_json, tcp, tls, ssh, creds)
    peer = Peer(cmd, [tcp, tls, ssh], d / "stayrtr.log", "stayrtr")
    try:
        deadline = time.monotonic() + 60
        while b"New update" not in peer.log.read_bytes():
            assert time.monotonic() < deadline, peer.text()[-2000:]
            time.sleep(0.1)
        yield {
            "tls": tls,
            "ssh": ssh,
            "known_hosts": known_hosts(d / "known_hosts", ssh, creds["ssh_host.pub"]),
        }
    finally:
        peer.stop()


def count_sync(port: int, opts: TransportOptions, timeout: float) -> int:
    async def run():
        store = VRPStore()
        client = RTRClient("127.0.0.1", port, store, transport=opts, max_backoff=0.5, max_version=1)
        task = asyncio.ensure_future(client.run())
        try:
            await client.wait_synced(timeout)
        except TimeoutError:
            raise AssertionError(
                f"no complete sync within {timeout} s ({client.last_error}); "
                f"{len(client.session._pending or ())} records pending"
            ) from None
        finally:
            client.stop()
            await task
        return store.counts()["vrps"]

    return asyncio.run(run())


@pytest.mark.parametrize("transport", ["ssh", "tls"])
def test_full_424k_set_from_stayrtr_over_ssh_and_tls(stayrtr_big, creds, transport):
    """StayRTR writes PDU by PDU: over SSH every PDU is its own channel packet; the client's
    read coalescing must not wake up once per packet (it stalled after ~6,000 records)."""
    opts = ssh_opts(creds, stayrtr_big["known_hosts"]) if transport == "ssh" else tls_opts(creds)
    assert count_sync(stayrtr_big[transport], opts, timeout=90) == PREPDEV_VRPS


@pytest.mark.parametrize("transport", ["ssh", "tls"])
def test_full_424k_set_from_our_cache_over_ssh_and_tls(our_cache, creds, prepdev_json, transport):
    c = our_cache("--vrps", str(prepdev_json))
    c.wait_for(r"serving RTR over SSH", timeout=60)
    opts = ssh_opts(creds, c.known_hosts) if transport == "ssh" else tls_opts(creds)
    assert count_sync(getattr(c, transport), opts, timeout=60) == PREPDEV_VRPS


def test_ssh_password_login_with_secrets_from_a_file_and_the_environment(creds, tmp_path):
    """The cache takes its listener password from a file, the client from the environment; no
    password on either command line."""
    pw = tmp_path / "pw"
    pw.write_text(creds["password"] + "\n")
    pw.chmod(0o600)
    tcp, ssh = free_port(), free_port()
    kh = known_hosts(tmp_path / "kh", ssh, creds["ssh_host.pub"])
    cache = Peer(
        [sys.executable, "-m", "rov_router.cli", "cache", "--vrps", str(SMALL), "--listen",
         f"127.0.0.1:{tcp}", "--session-file", str(tmp_path / "s"), "--ssh-listen",
         f"127.0.0.1:{ssh}", "--ssh-host-key", str(creds["ssh_host"]), "--ssh-user", "rpki",
         "--ssh-password-file", str(pw)],
        [tcp, ssh], tmp_path / "cache.log", "cache",
    )  # fmt: skip
    try:
        r = subprocess.run(
            [sys.executable, "-m", "rov_router.cli", "rtr", "--cache", f"127.0.0.1:{ssh}",
             "--transport", "ssh", "--ssh-user", "rpki", "--known-hosts", str(kh), "--once",
             "--json", "--timeout", "30"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "ROV_ROUTER_SSH_PASSWORD": creds["password"]},
        )  # fmt: skip
    finally:
        cache.stop()
    assert r.returncode == 0, r.stderr
    (syn,) = [json.loads(x) for x in r.stdout.splitlines() if '"synced"' in x]
    assert syn["vrps"] == len(EXPECTED)
    assert "warning" not in r.stderr and "warning" not in cache.text()
