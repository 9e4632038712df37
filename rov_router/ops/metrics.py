"""Prometheus metrics for a running router (prometheus-client), on loopback by default.

Names follow StayRTR / rtrmon where the meaning is the same (``rpki_vrps{ip_version}``,
``rtr_state``, ``rtr_serial``, ``rtr_session``).  Values are read at scrape time: the HTTP
thread asks the event loop for a snapshot, so nothing is read while the loop changes it.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..status import NeighborStatus, RpkiSourceStatus, Stats, Status


class Scrape(NamedTuple):
    """What one scrape reads from the status view."""

    rpki: tuple[RpkiSourceStatus, ...]
    neighbors: tuple[NeighborStatus, ...]
    stats: Stats
    now: float


def snapshot(status: Status) -> Scrape:
    return Scrape(status.rpki(), status.neighbors(), status.stats(), time.time())


class _Collector:
    def __init__(self, status: Status, loop: asyncio.AbstractEventLoop) -> None:
        self.status = status
        self.loop = loop

    def _snap(self) -> Scrape:
        async def take() -> Scrape:
            return snapshot(self.status)

        return asyncio.run_coroutine_threadsafe(take(), self.loop).result(10)

    def collect(self):
        s = self._snap()
        g = GaugeMetricFamily
        state = g("rtr_state", "RTR session established (1) or not (0)", labels=["source", "cache"])
        version = g("rtr_version", "negotiated RTR protocol version", labels=["source"])
        session = g("rtr_session", "RTR session ID", labels=["source"])
        serial = g("rtr_serial", "RTR serial number of the data held", labels=["source"])
        vrps = g("rpki_vrps", "VRPs held", labels=["source", "ip_version"])
        keys = g("rpki_router_keys", "BGPsec router keys held", labels=["source"])
        aspas = g("rpki_aspas", "ASPA records held", labels=["source"])
        age = g(
            "rtr_last_update_seconds", "seconds since the last successful update", labels=["source"]
        )
        expire = g("rtr_expire_seconds", "seconds until the data expires", labels=["source"])
        for r in s.rpki:
            src = r.name
            state.add_metric([src, r.cache], 1.0 if r.state == "established" else 0.0)
            version.add_metric([src], r.version)
            if r.session_id is not None:
                session.add_metric([src], r.session_id)
            if r.serial is not None:
                serial.add_metric([src], r.serial)
            vrps.add_metric([src, "4"], r.vrps_v4)
            vrps.add_metric([src, "6"], r.vrps_v6)
            keys.add_metric([src], r.router_keys)
            aspas.add_metric([src], r.aspas)
            if r.last_update:
                age.add_metric([src], s.now - r.last_update)
            if r.expires_in is not None:
                expire.add_metric([src], r.expires_in)
        yield from (state, version, session, serial, vrps, keys, aspas, age, expire)
        up = g(
            "bgp_neighbor_up",
            "BGP session established (1) or not (0)",
            labels=["neighbor", "asn", "role"],
        )
        received = g("bgp_routes_received", "routes in the Adj-RIB-In", labels=["neighbor"])
        routes = g(
            "bgp_routes",
            "routes by origin validation state and fate",
            labels=["neighbor", "verdict", "status"],
        )
        advertised = g(
            "bgp_routes_advertised", "routes advertised to the neighbor", labels=["neighbor"]
        )
        for n in s.neighbors:
            nb = n.address
            up.add_metric([nb, str(n.asn), n.role], 1.0 if n.up else 0.0)
            received.add_metric([nb], n.received)
            for v, count in (
                ("valid", n.valid),
                ("invalid", n.invalid),
                ("not-found", n.not_found),
            ):
                routes.add_metric([nb, v, "all"], count)
            routes.add_metric([nb, "any", "accepted"], n.accepted)
            routes.add_metric([nb, "any", "dropped"], n.dropped)
            advertised.add_metric([nb], n.advertised)
        yield from (up, received, routes, advertised)
        st = s.stats
        c = CounterMetricFamily
        yield c("rov_revalidations", "revalidation runs after RPKI changes", value=st.revalidations)
        yield c("rov_revalidated_routes", "routes revalidated", value=st.revalidated_routes)
        yield c(
            "rov_revalidation_seconds", "time spent revalidating", value=st.revalidation_seconds
        )
        yield c("rov_exabgp_lines", "lines read from ExaBGP", value=st.lines)
        yield c("rov_unparsed_lines", "ExaBGP lines that could not be parsed", value=st.unparsed)


def start_metrics(status: Status, host: str, port: int):
    """Serve /metrics on host:port (a daemon thread); returns (server, thread)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(status, asyncio.get_running_loop()))
    return start_http_server(port, addr=host, registry=registry)
