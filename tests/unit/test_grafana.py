"""The Grafana dashboard in examples/ only queries metrics rov-router really exports."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry, generate_latest

from rov_router.ops import metrics
from rov_router.status import NeighborStatus, RpkiSourceStatus, Stats
from tests.support.env import REPO

DASHBOARD = REPO / "examples" / "grafana" / "rov-router-dashboard.json"
PROMQL = {"sum", "rate", "irate", "increase", "max", "min", "avg", "count", "by", "without",
          "on", "ignoring", "and", "or", "unless", "bool", "label_values", "instance"}  # fmt: skip


class _Fixed(metrics._Collector):
    """The real collector over a fixed snapshot (one source, one neighbor)."""

    def __init__(self) -> None:
        pass

    def _snap(self) -> metrics.Scrape:
        src = RpkiSourceStatus(name="s", cache="127.0.0.1:3323", preference=0, connected=True,
                               state="established", version=2, session_id=1, serial=5,
                               refresh=3600, retry=600, expire=7200, expires_in=10.0,
                               last_update=1.0, last_error=None, vrps=3, vrps_v4=2, vrps_v6=1,
                               aspas=1, router_keys=0)  # fmt: skip
        nb = NeighborStatus(address="127.0.0.2", asn=65001, role="upstream", description="",
                            policy="drop-invalid", aspa_policy="off", state="up", reason="",
                            since=None, received=3, accepted=2, dropped=1, valid=1, invalid=1,
                            not_found=1, held=0, advertised=0)  # fmt: skip
        stats = Stats(lines=9, unparsed=0, revalidations=1, revalidated_routes=2,
                      revalidation_seconds=0.1)  # fmt: skip
        return metrics.Scrape((src,), (nb,), stats, 2.0)


def exported() -> set[str]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Fixed())
    text = generate_latest(reg).decode()
    return {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1].isalpha()}


def test_every_dashboard_query_uses_exported_metrics():
    names = exported()
    assert {"rtr_state", "rpki_vrps", "bgp_routes", "rov_revalidations_total"} <= names
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    assert len(exprs) >= 10
    used: set[str] = set()
    for expr in exprs:
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)  # labels, ranges, strings
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
        idents = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", bare)) - PROMQL
        assert idents, expr
        unknown = idents - names
        assert not unknown, f"{expr}: {sorted(unknown)} not exported (have {sorted(names)})"
        used |= idents
    # every metric family is on the dashboard somewhere
    missing = {n for n in names if not n.endswith("_created")} - used
    assert missing <= {"rtr_version", "rtr_session", "rov_exabgp_lines_total"}, missing
