"""The router core without sockets: the unit tests' router TOML, ExaBGP JSON lines as ExaBGP 5
writes them, a core built on the small VRP set, and a status view over it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rov_router.config import RouterConfig, load_config
from rov_router.router import RouterCore
from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import load_vrp_file
from rov_router.rtr.client import RTRClient
from rov_router.status import Status
from tests.support.env import DATA

#: the unit tests' router (the config tests name its line numbers: edit with care)
GOOD = """
[router]
asn = 65000
router_id = "127.0.0.1"

[[neighbor]]
address = "127.0.0.2"
asn = 65001

[[neighbor]]
address = "127.0.0.9"
asn = 65009
role = "downstream"
port = 1799

[[rpki]]
vrps = "v.json"
"""


def make_core(
    tmp_path: Path, *, up_extra: str = "", down_extra: str = "", extra: str = "", text: str = GOOD
) -> tuple[RouterCore, VRPStore]:
    """A core on ``text`` (``up_extra`` / ``down_extra`` appended to the upstream's ASN and the
    downstream's port lines, ``extra`` at the end) and a store holding small_vrps.json."""
    (tmp_path / "v.json").write_text('{"roas": []}')
    p = tmp_path / "r.toml"
    t = text.replace("asn = 65001", "asn = 65001" + up_extra)
    t = t.replace("port = 1799", "port = 1799" + down_extra)
    p.write_text(t + extra)
    store = VRPStore()
    store.replace("f", load_vrp_file(DATA / "small_vrps.json").vrps)
    return RouterCore(load_config(p), store, clock=lambda: 1000.0), store


def core(
    tmp_path: Path, policy: str = "drop-invalid", extra: str = ""
) -> tuple[RouterCore, VRPStore]:
    """:func:`make_core` with the upstream's ``policy`` set."""
    return make_core(tmp_path, up_extra=f'\npolicy = "{policy}"', extra=extra)


def msg(kind: str, peer: str = "127.0.0.2", **body) -> str:
    n = {
        "address": {"local": "127.0.0.1", "peer": peer},
        "asn": {"local": 65000, "peer": 65001},
        "router-id": "127.0.0.1",
        **body,
    }
    return json.dumps({"exabgp": "5.0.0", "type": kind, "neighbor": n})


def announce(prefix: str, path: list[int], nh: str = "127.0.0.2") -> str:
    fam = "ipv6 unicast" if ":" in prefix else "ipv4 unicast"
    return msg(
        "update",
        direction="receive",
        message={
            "update": {
                "attribute": {
                    "origin": "igp",
                    "as-path": {"0": {"element": "as-sequence", "value": path}},
                },
                "announce": {fam: {nh: [{"nlri": prefix}]}},
            }
        },
    )


def withdraw(prefix: str) -> str:
    fam = "ipv6 unicast" if ":" in prefix else "ipv4 unicast"
    return msg(
        "update", direction="receive", message={"update": {"withdraw": {fam: [{"nlri": prefix}]}}}
    )


def up(c: RouterCore, peer: str) -> None:
    c.feed_line(msg("state", peer=peer, state="up"))


#: several upstreams (IPv4, IPv6, 4-byte ASNs) and one downstream, for the codec fuzzers
FUZZ_CONFIG = """
[router]
asn = 65000
router_id = "127.0.0.1"

[[neighbor]]
address = "127.0.0.2"
asn = 65001

[[neighbor]]
address = "127.0.0.3"
asn = 4200000003

[[neighbor]]
address = "127.0.0.5"
asn = 65005

[[neighbor]]
address = "::1"
asn = 4200000003

[[neighbor]]
address = "127.0.0.9"
asn = 65009
role = "downstream"
"""


def load_config_text(text: str) -> RouterConfig:
    p = Path(os.environ.get("TMPDIR", "/tmp")) / f"rov-fuzz-{os.getpid()}.toml"
    p.write_text(text)
    try:
        return load_config(p)
    finally:
        p.unlink()


class Source:
    def __init__(self, name: str, client: RTRClient) -> None:
        self.name, self.client, self.last_update = name, client, None

    @property
    def preference(self) -> int:
        return self.client.preference


def sample_status(tmp_path: Path) -> tuple[Status, RouterCore, VRPStore]:
    """A status view over a core holding one valid, one invalid and one not-found route."""
    c, store = make_core(tmp_path, up_extra='\npolicy = "drop-invalid"')
    client = RTRClient("127.0.0.1", 1, store, source="f")
    st = Status(c, store, [Source("f", client)], clock=lambda: 1000.0)
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    for line in (
        announce("192.0.2.0/24", [65001, 64496]),  # valid
        announce("198.51.100.0/24", [65001, 64499]),  # covered, wrong origin: invalid
        announce("11.0.0.0/8", [65001, 65005]),  # not-found
    ):
        c.feed_line(line)
    c.commands()
    return st, c, store
