"""The state file of ``rov-router run --state-file``: the whole status view as one JSON
document (RPKI sources, neighbors, every route, counters, the summary), written on SIGUSR1 and
at exit so that a reader never sees half of it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..status import Status


def state_document(status: Status) -> dict:
    now = time.time()
    return {
        "time": now,
        "uptime": now - status.started,
        "rpki": [s.to_json() for s in status.rpki()],
        "neighbors": [n.to_json() for n in status.neighbors()],
        "routes": [r.to_json() for r in status.all_routes()],
        "stats": vars(status.stats()),
        "summary": status.summary().to_json(),
    }


def write_state_file(path: Path, status: Status) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state_document(status), default=str))
    tmp.replace(path)
