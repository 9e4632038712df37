"""Teaching scenarios: one TOML file per scenario in ``topologies/``.

```toml
[scenario]
name = "origin-hijack"
title = "Origin hijack"
summary = "one line for 'rov-router lab --list'"
lesson = "what to take away, in plain words"

[router]                      # the router under test (always 127.0.0.1)
asn = 65000
prefer_valid = false

[[as]]                        # every other AS runs its own ExaBGP on its own 127.0.0.x address
asn = 64496
name = "Victim"
address = "127.0.0.11"
relation = "customer"         # what it is to the router: customer | provider | peer |
                              # upstream | downstream (receives our routes) | route-server | rs-client
policy = "drop-invalid"       # ROV policy for routes from it (optional)
aspa_policy = "drop"          # ASPA policy (optional)

[rpki]                        # served by the embedded RTR cache
roas = [{ prefix = "192.0.2.0/24", maxLength = 24, asn = 64496 }]
aspas = [{ customer = 64501, providers = [64502] }]
refresh = 5                   # End of Data timers for the router (seconds)
retry = 2
expire = 3600

[[step]]
title = "The victim announces its prefix"
explain = "why this step matters"
action = "announce"           # announce | withdraw | add-roa | remove-roa | set-aspa |
                              # remove-aspa | stop-cache | start-cache | wait | replay
from = 64496                  # announce / withdraw / replay: which AS speaks
prefix = "192.0.2.0/24"
path = [64496]                # the AS_PATH it sends (first AS = itself); default [from]
wait = 1.0                    # pause afterwards (seconds, divided by --speed)
expect = [
  { prefix = "192.0.2.0/24", from = 64496, verdict = "valid", accepted = true },
  { at = 64510, has = ["192.0.2.0/24"], lacks = [] },  # what a downstream AS holds
]
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from ..config import ASPA_POLICIES, POLICIES
from ..rpki.vrp import VRP, parse_asn

RELATIONS = {
    "customer": "customer",
    "provider": "provider",
    "peer": "peer",
    "upstream": "upstream",
    "downstream": "downstream",
    "route-server": "route-server",
    "rs-client": "rs-client",
}
ACTIONS = (
    "announce",
    "withdraw",
    "add-roa",
    "remove-roa",
    "set-aspa",
    "remove-aspa",
    "stop-cache",
    "start-cache",
    "wait",
    "replay",
)
VERDICTS = ("valid", "invalid", "not-found", "absent")


class ScenarioError(ValueError):
    pass


@dataclass
class LabAS:
    asn: int
    name: str
    address: str
    relation: str
    policy: str = "drop-invalid"
    aspa_policy: str = "drop"


@dataclass
class Expect:
    prefix: str | None = None
    origin_from: int | None = None  # the announcing AS ('from')
    verdict: str | None = None
    aspa: str | None = None
    accepted: bool | None = None
    at: int | None = None  # a downstream AS
    has: list[str] = field(default_factory=list)
    lacks: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.at is not None:
            parts = []
            if self.has:
                parts.append(f"AS{self.at} holds {', '.join(self.has)}")
            if self.lacks:
                parts.append(f"AS{self.at} does not hold {', '.join(self.lacks)}")
            return " and ".join(parts)
        want = []
        if self.verdict:
            want.append(self.verdict if self.verdict != "absent" else "absent")
        if self.aspa:
            want.append(f"ASPA {self.aspa}")
        if self.accepted is not None:
            want.append("accepted" if self.accepted else "dropped")
        return f"{self.prefix} from AS{self.origin_from} is {' and '.join(want)}"


@dataclass
class Step:
    index: int
    title: str
    action: str
    explain: str = ""
    origin_from: int | None = None
    prefix: str | None = None
    path: list[int] = field(default_factory=list)
    roa: VRP | None = None
    aspa: tuple[int, tuple[int, ...]] | None = None
    file: Path | None = None
    wait: float = 1.0
    expect: list[Expect] = field(default_factory=list)


@dataclass
class Scenario:
    path: Path
    name: str
    title: str
    summary: str
    lesson: str
    router_asn: int
    prefer_valid: bool
    ases: list[LabAS]
    roas: list[VRP]
    aspas: dict[int, tuple[int, ...]]
    refresh: int
    retry: int
    expire: int
    steps: list[Step]

    def as_by_asn(self, asn: int) -> LabAS:
        for a in self.ases:
            if a.asn == asn:
                return a
        raise KeyError(asn)


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p}: not valid TOML: {e}") from None

    def fail(where: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{p}: {where}: {msg}")

    def need(d: dict, key: str, where: str, kind: type | tuple = str) -> Any:
        if key not in d:
            raise fail(where, f"missing key '{key}'")
        v = d[key]
        if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
            raise fail(f"{where}.{key}", f"expected {getattr(kind, '__name__', kind)}, got {v!r}")
        return v

    meta = doc.get("scenario", {})
    router = doc.get("router", {})
    ases: list[LabAS] = []
    seen_addr: set[str] = set()
    for i, a in enumerate(doc.get("as", [])):
        where = f"as[{i}]"
        rel = need(a, "relation", where)
        if rel not in RELATIONS:
            raise fail(f"{where}.relation", f"{rel!r} is not one of {', '.join(RELATIONS)}")
        addr = need(a, "address", where)
        try:
            ok = ip_address(addr).version == 4 and addr.startswith("127.") and addr != "127.0.0.1"
        except ValueError:
            ok = False
        if not ok:
            raise fail(
                f"{where}.address",
                f"{addr!r} must be a loopback address 127.x.y.z other "
                "than 127.0.0.1 (the router under test)",
            )
        if addr in seen_addr:
            raise fail(f"{where}.address", f"{addr} is used twice")
        seen_addr.add(addr)
        pol = a.get("policy", "drop-invalid")
        if pol not in POLICIES:
            raise fail(f"{where}.policy", f"{pol!r} is not one of {', '.join(POLICIES)}")
        apol = a.get("aspa_policy", "drop")
        if apol not in ASPA_POLICIES:
            raise fail(f"{where}.aspa_policy", f"{apol!r} is not one of {', '.join(ASPA_POLICIES)}")
        ases.append(
            LabAS(need(a, "asn", where, int), a.get("name", f"AS{a['asn']}"), addr, rel, pol, apol)
        )
    asns = {a.asn for a in ases}
    rpki = doc.get("rpki", {})
    roas = [_roa(r, f"rpki.roas[{i}]", fail) for i, r in enumerate(rpki.get("roas", []))]
    aspas = dict(_aspa(a, f"rpki.aspas[{i}]", fail) for i, a in enumerate(rpki.get("aspas", [])))
    steps: list[Step] = []
    for i, s in enumerate(doc.get("step", [])):
        where = f"step[{i}] ({s.get('title', '?')})"
        action = need(s, "action", where)
        if action not in ACTIONS:
            raise fail(f"{where}.action", f"{action!r} is not one of {', '.join(ACTIONS)}")
        st = Step(
            i, s.get("title", action), action, s.get("explain", ""), wait=float(s.get("wait", 1.0))
        )
        if action in ("announce", "withdraw", "replay"):
            st.origin_from = need(s, "from", where, int)
            if st.origin_from not in asns:
                raise fail(f"{where}.from", f"AS{st.origin_from} is not one of the scenario's ASes")
        if action in ("announce", "withdraw"):
            st.prefix = need(s, "prefix", where)
            try:
                VRP.parse(st.prefix, None, 0)
            except ValueError as e:
                raise fail(f"{where}.prefix", str(e)) from None
            st.path = [int(x) for x in s.get("path", [st.origin_from])]
            if st.path and st.path[0] != st.origin_from:
                raise fail(
                    f"{where}.path",
                    f"an AS path sent by AS{st.origin_from} must start "
                    f"with {st.origin_from}, got {st.path}",
                )
        if action in ("add-roa", "remove-roa"):
            st.roa = _roa(need(s, "roa", where, dict), f"{where}.roa", fail)
        if action in ("set-aspa", "remove-aspa"):
            st.aspa = _aspa(
                need(s, "aspa", where, dict),
                f"{where}.aspa",
                fail,
                providers_needed=action == "set-aspa",
            )
        if action == "replay":
            f = (p.parent / need(s, "file", where)).resolve()
            if not f.exists():
                raise fail(f"{where}.file", f"no such file: {f}")
            st.file = f
        for j, e in enumerate(s.get("expect", [])):
            st.expect.append(_expect(e, f"{where}.expect[{j}]", fail, asns))
        steps.append(st)
    if not steps:
        raise fail("step", "a scenario needs at least one [[step]]")
    return Scenario(
        path=p,
        name=meta.get("name", p.stem),
        title=meta.get("title", p.stem),
        summary=meta.get("summary", ""),
        lesson=meta.get("lesson", ""),
        router_asn=int(router.get("asn", 65000)),
        prefer_valid=bool(router.get("prefer_valid", False)),
        ases=ases,
        roas=roas,
        aspas=aspas,
        refresh=int(rpki.get("refresh", 5)),
        retry=int(rpki.get("retry", 2)),
        expire=int(rpki.get("expire", 3600)),
        steps=steps,
    )


def _roa(r: Any, where: str, fail) -> VRP:
    if not isinstance(r, dict):
        raise fail(where, "expected a table {prefix, maxLength, asn}")
    try:
        return VRP.parse(r["prefix"], r.get("maxLength"), parse_asn(r["asn"]))
    except KeyError as e:
        raise fail(where, f"missing key {e}") from None
    except ValueError as e:
        raise fail(where, str(e)) from None


def _aspa(a: Any, where: str, fail, providers_needed: bool = True) -> tuple[int, tuple[int, ...]]:
    if not isinstance(a, dict) or "customer" not in a:
        raise fail(where, "expected a table {customer, providers}")
    provs = a.get("providers", [])
    if providers_needed and not provs:
        raise fail(where, "'providers' must list at least one AS (use [0] for 'no providers')")
    return int(a["customer"]), tuple(sorted({int(x) for x in provs}))


def _expect(e: Any, where: str, fail, asns: set[int]) -> Expect:
    if not isinstance(e, dict):
        raise fail(where, "expected a table")
    ex = Expect(
        prefix=e.get("prefix"),
        origin_from=e.get("from"),
        verdict=e.get("verdict"),
        aspa=e.get("aspa"),
        accepted=e.get("accepted"),
        at=e.get("at"),
        has=list(e.get("has", [])),
        lacks=list(e.get("lacks", [])),
    )
    if ex.at is not None:
        if ex.at not in asns:
            raise fail(f"{where}.at", f"AS{ex.at} is not one of the scenario's ASes")
        return ex
    if ex.prefix is None or ex.origin_from is None:
        raise fail(where, "needs 'prefix' and 'from' (or 'at' with 'has' / 'lacks')")
    if ex.verdict is not None and ex.verdict not in VERDICTS:
        raise fail(f"{where}.verdict", f"{ex.verdict!r} is not one of {', '.join(VERDICTS)}")
    if ex.aspa is not None and ex.aspa not in ("valid", "invalid", "unknown"):
        raise fail(f"{where}.aspa", f"{ex.aspa!r} is not one of valid, invalid, unknown")
    return ex


def list_scenarios(directory: Path) -> list[Scenario]:
    return [load_scenario(f) for f in sorted(directory.glob("*.toml"))]
