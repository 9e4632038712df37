"""Where the shipped data lives: ``topologies/`` (lab scenarios) and ``examples/`` (demo data,
sample configs).  A wheel carries them as ``rov_router/_data/NAME`` (see setup.py); a checkout
or an editable install reads them from the top of the repository."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The directory ``name`` ("topologies" or "examples"), packaged or from the checkout."""
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PKG.parent / name
