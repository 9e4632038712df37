"""Router configuration: one TOML file -> dataclasses.  Errors name the file, the line and the
key (``router.toml:12: neighbor[1].role: 'upstrem' is not one of ...``).

Over 500 lines because every key is checked here with an error that names it; the reference
below doubles as the documentation of each key.

```toml
[router]
asn = 65000
router_id = "127.0.0.1"
listen = "127.0.0.1"          # address(es) ExaBGP listens on ("127.0.0.1 ::1")
port = 1790

[[neighbor]]
address = "127.0.0.2"
asn = 65001
role = "upstream"             # upstream | downstream | customer | provider | peer | route-server | rs-client
policy = "drop-invalid"       # drop-invalid | depref-invalid | tag | accept-all
aspa_policy = "drop"          # ASPA-invalid routes: drop | depref | tag | accept (customer,
                              # peer, provider, route-server, rs-client roles only)
passive = true                # wait for the neighbor to connect (default for all but downstream)
port = 179                    # port to dial when not passive
local_address = "127.0.0.1"
next_hop6 = "2001:db8::1"     # IPv6 next hop when announcing IPv6 over an IPv4 session
next_hop = "self"             # self | keep (the received one, as a route server) | an address
med = "keep"                  # MED sent to this neighbor: keep | remove | a number
tag_communities = { valid = "65000:0:0", not-found = "65000:0:1", invalid = "65000:0:2" }
                              # policy "tag" towards eBGP neighbors ("A:B" or "A:B:C"); iBGP
                              # neighbors get the RFC 8097 extended community instead
hold_time = 90

[[rpki]]
cache = "127.0.0.1:3323"      # an RTR cache ... (version = 2, min_version = 0)
transport = "tcp"             # tcp | tls | ssh (RFC 8210 §9); once given, 'cache' may omit
                              # the port (323 / 324 / 22).  tls: cert, key, ca, server_name;
                              # ssh: ssh_user, ssh_key, ssh_password(_file), known_hosts,
                              # ssh_insecure_accept_unknown_host_key (paths: relative to here)
[[rpki]]
vrps = "vrps.json"            # ... or a VRP file served by the embedded cache (slurm = "...")
max_shrink = 0.5              # hold back a reload withdrawing more than this (SIGUSR2 confirms)

[policy]
prefer_valid = false          # valid beats not-found right after local-pref
depref_local_pref = 50
rpki_wait = 120               # start-up: routes are held (not advertised) until every RPKI
                              # source has synced once, at most this long; 0: no hold

[display]
mode = "auto"                 # auto | live | plain | json
```
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from .rtr.transport.options import (
    DEFAULT_PORTS,
    KINDS,
    SSH_FIELDS,
    TLS_FIELDS,
    TransportOptions,
    parse_hostport,
    read_password_file,
)

ROLES = ("upstream", "downstream", "customer", "provider", "peer", "route-server", "rs-client")
POLICIES = ("drop-invalid", "depref-invalid", "tag", "accept-all")
ASPA_POLICIES = ("drop", "depref", "tag", "accept")
DISPLAY = ("auto", "live", "plain", "json")


class ConfigError(ValueError):
    def __init__(self, path: str, line: int | None, key: str, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path, self.line, self.key = path, line, key


@dataclass
class NeighborConfig:
    address: str
    asn: int
    role: str = "upstream"
    policy: str = "drop-invalid"
    aspa_policy: str = "drop"
    passive: bool = True
    port: int = 179
    local_address: str | None = None
    next_hop6: str | None = None
    #: IPv4 (and IPv6 over IPv6) next hop announced to this neighbor: "self" (the session's
    #: local address), "keep" (the received one, as a route server does) or an address
    next_hop: str = "self"
    #: MULTI_EXIT_DISC sent to this neighbor: "keep" (as received), "remove", or a value
    med: str | int = "keep"
    #: policy "tag" towards eBGP neighbors: community per state ("A:B" standard or "A:B:C"
    #: large); None: the large community LOCAL_AS:0:N (N = 0 valid, 1 not found, 2 invalid)
    tag_communities: dict[str, tuple[int, ...]] | None = None
    description: str = ""
    hold_time: int = 90

    @property
    def receives_from(self) -> bool:
        return self.role != "downstream"


@dataclass
class RPKISourceConfig:
    cache: tuple[str, int] | None = None
    vrps: Path | None = None
    slurm: Path | None = None
    version: int = 2
    min_version: int = 0
    name: str = ""
    refresh: int = 3600
    retry: int = 600
    expire: int = 7200
    ignore_expires: bool = False
    max_shrink: float = 0.5  # a 'vrps' reload withdrawing more than this fraction is held back
    max_records: int = 6_000_000  # a transfer with more records is abandoned, table unchanged
    min_expire: int = 600  # labs only: accept an Expire below RFC 8210's 600 s
    preference: int = 1  # RFC 8210 §10: lower is more preferred; equal ones serve together
    # transport to 'cache' (RFC 8210 §9): tcp | tls | ssh
    transport: str = "tcp"
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    ssh_user: str | None = None
    ssh_key: Path | None = None
    ssh_password: str | None = None
    known_hosts: Path | None = None
    ssh_insecure_accept_unknown_host_key: bool = False

    def transport_options(self) -> TransportOptions:
        """How to reach 'cache' (:class:`rov_router.rtr.transport.options.TransportOptions`)."""
        return TransportOptions(**{f.name: getattr(self, f.name) for f in fields(TransportOptions)})


@dataclass
class RouterConfig:
    path: Path
    asn: int
    router_id: str
    listen: str = "127.0.0.1"
    port: int = 1790
    neighbors: list[NeighborConfig] = field(default_factory=list)
    rpki: list[RPKISourceConfig] = field(default_factory=list)
    prefer_valid: bool = False
    depref_local_pref: int = 50
    #: seconds routes are held back (not advertised) waiting for every RPKI source's first
    #: sync at start-up; 0: no hold
    rpki_wait: int = 120
    display: str = "auto"
    exabgp: str = "managed"  # managed | external
    socket: Path | None = None
    control_socket: Path | None = None
    metrics: tuple[str, int] | None = None

    def neighbor(self, address: str) -> NeighborConfig | None:
        for n in self.neighbors:
            if ip_address(n.address) == ip_address(address):
                return n
        return None


class _Lines:
    """Find the line of a key in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def find(self, table: str, index: int | None, key: str | None) -> int | None:
        want_header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        start = None
        for i, line in enumerate(self.lines):
            if want_header.match(line):
                seen += 1
                if index is None or seen == index:
                    start = i
                    break
        if start is None:
            return None
        if key is None:
            return start + 1
        key_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for j in range(start + 1, len(self.lines)):
            if self.lines[j].lstrip().startswith("["):
                break
            if key_re.match(self.lines[j]):
                return j + 1
        return start + 1


def load_config(path: str | Path) -> RouterConfig:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(str(p), None, "", f"cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            str(p), line, "", f"not a text (UTF-8) file: byte {e.start} is 0x{data[e.start]:02x}"
        ) from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise ConfigError(str(p), line, "", "not a text file: it contains NUL bytes")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            str(p), int(m.group(1)) if m else None, "", f"not valid TOML: {e}"
        ) from None
    lines = _Lines(text)
    base = p.resolve().parent

    def err(table: str, index: int | None, key: str | None, msg: str) -> ConfigError:
        label = table if index is None else f"{table}[{index}]"
        return ConfigError(
            str(p), lines.find(table, index, key), f"{label}.{key}" if key else label, msg
        )

    def get(d: dict, table: str, index: int | None, key: str, kind, default: Any = ..., check=None):
        if key not in d:
            if default is ...:
                raise err(table, index, None, f"missing required key '{key}'")
            return default
        v = d[key]
        if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise err(table, index, key, f"expected an integer, got {v!r}")
        if kind is str and not isinstance(v, str):
            raise err(table, index, key, f"expected a string, got {v!r}")
        if kind is bool and not isinstance(v, bool):
            raise err(table, index, key, f"expected true or false, got {v!r}")
        if kind is float and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise err(table, index, key, f"expected a number, got {v!r}")
        if check is not None:
            problem = check(v)
            if problem:
                raise err(table, index, key, problem)
        return v

    def one_of(options):
        return lambda v: None if v in options else f"{v!r} is not one of {', '.join(options)}"

    def asn(v: int) -> str | None:
        return None if 0 < v <= 0xFFFFFFFF else f"ASN {v} outside 1..4294967295"

    def addr(v: str) -> str | None:
        try:
            ip_address(v)
        except ValueError:
            return f"{v!r} is not an IP address"
        return None

    def port(v: int) -> str | None:
        return None if 0 <= v <= 65535 else f"port {v} outside 0..65535"

    known_top = {"router", "neighbor", "rpki", "policy", "display", "exabgp", "control", "metrics"}
    for k in doc:
        if k not in known_top:
            raise ConfigError(
                str(p), None, k, f"unknown section (expected {', '.join(sorted(known_top))})"
            )
    r = doc.get("router")
    if not isinstance(r, dict):
        raise ConfigError(str(p), None, "router", "missing [router] section")
    cfg = RouterConfig(
        path=p,
        asn=get(r, "router", None, "asn", int, check=asn),
        router_id=get(r, "router", None, "router_id", str, check=addr),
        listen=get(
            r,
            "router",
            None,
            "listen",
            str,
            "127.0.0.1",
            check=lambda v: next((addr(a) for a in v.split() if addr(a)), None),
        ),
        port=get(r, "router", None, "port", int, 1790, check=port),
    )
    _unknown(r, {"asn", "router_id", "listen", "port"}, err, "router", None)
    neighbors = doc.get("neighbor", [])
    if not isinstance(neighbors, list):
        raise err("neighbor", None, None, "use [[neighbor]] tables")
    seen: set[str] = set()
    for i, n in enumerate(neighbors):
        role = get(n, "neighbor", i, "role", str, "upstream", check=one_of(ROLES))
        nc = NeighborConfig(
            address=get(n, "neighbor", i, "address", str, check=addr),
            asn=get(n, "neighbor", i, "asn", int, check=asn),
            role=role,
            policy=get(n, "neighbor", i, "policy", str, "drop-invalid", check=one_of(POLICIES)),
            aspa_policy=get(
                n, "neighbor", i, "aspa_policy", str, "drop", check=one_of(ASPA_POLICIES)
            ),
            passive=get(n, "neighbor", i, "passive", bool, role != "downstream"),
            port=get(n, "neighbor", i, "port", int, 179, check=port),
            local_address=get(n, "neighbor", i, "local_address", str, None, check=addr),
            next_hop6=get(n, "neighbor", i, "next_hop6", str, None, check=addr),
            next_hop=get(
                n,
                "neighbor",
                i,
                "next_hop",
                str,
                "self",
                check=lambda v: None if v in ("self", "keep") else addr(v),
            ),
            med=_med(n, i, err),
            tag_communities=_tag_communities(n, i, err),
            description=get(n, "neighbor", i, "description", str, ""),
            hold_time=get(
                n,
                "neighbor",
                i,
                "hold_time",
                int,
                90,
                check=lambda v: (
                    None
                    if v == 0 or 3 <= v <= 65535
                    else "hold time must be 0 or 3..65535 (RFC 4271)"
                ),
            ),
        )
        _unknown(n, {f.name for f in fields(NeighborConfig)}, err, "neighbor", i)
        norm = str(ip_address(nc.address))
        if norm in seen:
            raise err("neighbor", i, "address", f"{nc.address} is configured twice")
        seen.add(norm)
        cfg.neighbors.append(nc)
    for i, s in enumerate(doc.get("rpki", [])):
        src = RPKISourceConfig(
            version=get(
                s,
                "rpki",
                i,
                "version",
                int,
                2,
                check=lambda v: None if v in (0, 1, 2) else "RTR version must be 0, 1 or 2",
            ),
            min_version=get(
                s,
                "rpki",
                i,
                "min_version",
                int,
                0,
                check=lambda v: None if v in (0, 1, 2) else "RTR version must be 0, 1 or 2",
            ),
            name=get(s, "rpki", i, "name", str, ""),
            refresh=get(s, "rpki", i, "refresh", int, 3600),
            retry=get(s, "rpki", i, "retry", int, 600),
            expire=get(s, "rpki", i, "expire", int, 7200),
            ignore_expires=get(s, "rpki", i, "ignore_expires", bool, False),
            max_records=get(
                s,
                "rpki",
                i,
                "max_records",
                int,
                6_000_000,
                check=lambda v: None if v >= 1 else "max_records must be at least 1",
            ),
            max_shrink=get(
                s,
                "rpki",
                i,
                "max_shrink",
                float,
                0.5,
                check=lambda v: None if 0 <= v <= 1 else "max_shrink must be a fraction 0..1",
            ),
            min_expire=get(s, "rpki", i, "min_expire", int, 600),
            preference=get(
                s,
                "rpki",
                i,
                "preference",
                int,
                1,
                check=lambda v: None if 0 <= v <= 255 else "preference must be 0..255",
            ),
        )
        has_cache, has_vrps = "cache" in s, "vrps" in s
        if has_cache == has_vrps:
            raise err("rpki", i, None, "give exactly one of 'cache' (HOST:PORT) or 'vrps' (a file)")
        if has_cache:
            _transport(s, src, base, get, err, i)
            c = get(s, "rpki", i, "cache", str)
            try:
                src.cache = parse_hostport(
                    c, DEFAULT_PORTS[src.transport] if "transport" in s else None
                )
            except ValueError:
                raise err("rpki", i, "cache", f"expected HOST:PORT, got {c!r}") from None
            src.name = src.name or c
        else:
            vp = (base / get(s, "rpki", i, "vrps", str)).resolve()
            if not vp.exists():
                raise err("rpki", i, "vrps", f"no such file: {vp}")
            src.vrps = vp
            src.name = src.name or vp.name
            for k in ("transport", *TLS_FIELDS, *SSH_FIELDS, "ssh_password_file"):
                if k in s:
                    raise err("rpki", i, k, "only for a 'cache' source (the VRP file is local)")
            if "slurm" in s:
                sp = (base / get(s, "rpki", i, "slurm", str)).resolve()
                if not sp.exists():
                    raise err("rpki", i, "slurm", f"no such file: {sp}")
                src.slurm = sp
        if src.min_version > src.version:
            raise err("rpki", i, "min_version", f"{src.min_version} is above version {src.version}")
        _unknown(
            s,
            {
                "cache",
                "vrps",
                "slurm",
                "version",
                "min_version",
                "name",
                "refresh",
                "retry",
                "expire",
                "ignore_expires",
                "max_shrink",
                "max_records",
                "min_expire",
                "preference",
                "transport",
                *TLS_FIELDS,
                *SSH_FIELDS,
                "ssh_password_file",
            },
            err,
            "rpki",
            i,
        )
        cfg.rpki.append(src)
    pol = doc.get("policy", {})
    cfg.prefer_valid = get(pol, "policy", None, "prefer_valid", bool, False)
    cfg.depref_local_pref = get(pol, "policy", None, "depref_local_pref", int, 50)
    cfg.rpki_wait = get(
        pol,
        "policy",
        None,
        "rpki_wait",
        int,
        120,
        check=lambda v: None if 0 <= v <= 86400 else "rpki_wait must be 0..86400 seconds",
    )
    _unknown(pol, {"prefer_valid", "depref_local_pref", "rpki_wait"}, err, "policy", None)
    disp = doc.get("display", {})
    cfg.display = get(disp, "display", None, "mode", str, "auto", check=one_of(DISPLAY))
    _unknown(disp, {"mode"}, err, "display", None)
    ex = doc.get("exabgp", {})
    cfg.exabgp = get(
        ex, "exabgp", None, "mode", str, "managed", check=one_of(("managed", "external"))
    )
    if "socket" in ex:
        cfg.socket = Path(get(ex, "exabgp", None, "socket", str))
    _unknown(ex, {"mode", "socket"}, err, "exabgp", None)
    if cfg.exabgp == "external" and cfg.socket is None:
        raise err(
            "exabgp", None, "socket", "mode 'external' needs the socket path the bridge connects to"
        )
    ctl = doc.get("control", {})
    if "socket" in ctl:
        cfg.control_socket = (base / get(ctl, "control", None, "socket", str)).resolve()
    _unknown(ctl, {"socket"}, err, "control", None)
    met = doc.get("metrics", {})
    if "listen" in met:
        lv = get(met, "metrics", None, "listen", str)
        host, sep, prt = lv.rpartition(":")
        if not sep or not prt.isdigit() or addr(host.strip("[]")):
            raise err("metrics", None, "listen", f"expected ADDRESS:PORT, got {lv!r}")
        cfg.metrics = (host.strip("[]"), int(prt))
    _unknown(met, {"listen"}, err, "metrics", None)
    return cfg


def _transport(s: dict, src: RPKISourceConfig, base: Path, get, err, i: int) -> None:
    """The transport keys of one [[rpki]] cache source; file paths relative to the config."""
    src.transport = get(
        s,
        "rpki",
        i,
        "transport",
        str,
        "tcp",
        check=lambda v: None if v in KINDS else f"{v!r} is not one of {', '.join(KINDS)}",
    )
    for k in ("ca", "cert", "key", "ssh_key", "known_hosts"):
        if k in s:
            setattr(src, k, (base / Path(get(s, "rpki", i, k, str)).expanduser()).resolve())
    for k in ("server_name", "ssh_user", "ssh_password"):
        setattr(src, k, get(s, "rpki", i, k, str, None))
    if "ssh_password_file" in s:
        if "ssh_password" in s:
            raise err("rpki", i, "ssh_password_file", "give ssh_password or ssh_password_file")
        pf = (base / Path(get(s, "rpki", i, "ssh_password_file", str)).expanduser()).resolve()
        try:
            src.ssh_password = read_password_file(pf)
        except ValueError as e:
            raise err("rpki", i, "ssh_password_file", str(e)) from None
    src.ssh_insecure_accept_unknown_host_key = get(
        s, "rpki", i, "ssh_insecure_accept_unknown_host_key", bool, False
    )
    problem = src.transport_options().problem()
    if problem:
        raise err("rpki", i, problem[0], problem[1])


def _med(n: dict, i: int, err) -> str | int:
    v = n.get("med", "keep")
    if v in ("keep", "remove"):
        return v
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF:
        return v
    raise err("neighbor", i, "med", f"expected keep, remove or 0..4294967295, got {v!r}")


TAG_STATES = ("valid", "not-found", "invalid")


def _tag_communities(n: dict, i: int, err) -> dict[str, tuple[int, ...]] | None:
    v = n.get("tag_communities")
    if v is None:
        return None
    if not isinstance(v, dict):
        raise err("neighbor", i, "tag_communities", "expected a table { valid = ..., ... }")
    out: dict[str, tuple[int, ...]] = {}
    for state, text in v.items():
        if state not in TAG_STATES:
            raise err(
                "neighbor",
                i,
                "tag_communities",
                f"{state!r} is not one of {', '.join(TAG_STATES)}",
            )
        parts = str(text).split(":")
        try:
            nums = tuple(int(x) for x in parts)
        except ValueError:
            nums = ()
        limits = (0xFFFF, 0xFFFF) if len(nums) == 2 else (0xFFFFFFFF,) * 3
        if len(nums) not in (2, 3) or any(
            not 0 <= x <= m for x, m in zip(nums, limits, strict=False)
        ):
            raise err(
                "neighbor",
                i,
                "tag_communities",
                f"{state} = {text!r}: expected A:B (standard) or A:B:C (large community)",
            )
        out[state] = nums
    missing = [s for s in TAG_STATES if s not in out]
    if missing:
        raise err("neighbor", i, "tag_communities", f"missing {', '.join(missing)}")
    return out


def _unknown(d: dict, allowed: set[str], err, table: str, index: int | None) -> None:
    for k in d:
        if k not in allowed:
            raise err(
                table, index, k, f"unknown key (expected one of {', '.join(sorted(allowed))})"
            )
