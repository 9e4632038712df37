"""Raw RTR byte-stream recording (``--dump``) and its reader.

A dump is a sequence of records ``kind(1) time(8, float64 BE) length(4, BE) data``:
``C`` connection made, ``<`` bytes received from the cache, ``>`` bytes sent to it,
``D`` connection lost.  Replaying it through a fresh :class:`ClientSession` with the recorded
times as the clock reproduces the session exactly (see :func:`replay`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

MAGIC = b"RTRDUMP1"
_REC = struct.Struct("!cdI")
RECORD_HEADER = _REC.size  # bytes before each record's data


class DumpError(ValueError):
    pass


class DumpWriter:
    def __init__(self, path: str | Path) -> None:
        self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._f.write(MAGIC)

    def record(self, kind: bytes, t: float, data: bytes = b"") -> None:
        self._f.write(_REC.pack(kind, t, len(data)))
        if data:
            self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_dump(path: str | Path) -> Iterator[tuple[bytes, float, bytes]]:
    """Yield ``(kind, time, data)``; raises :class:`DumpError` naming the offset of a bad record."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise DumpError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        if f.read(len(MAGIC)) != MAGIC:
            raise DumpError(f"{path}: not an rov-router RTR dump (bad magic)")
        off = len(MAGIC)
        while True:
            hdr = f.read(_REC.size)
            if not hdr:
                return
            if len(hdr) < _REC.size:
                raise DumpError(f"{path}: truncated record header at offset {off}")
            kind, t, n = _REC.unpack(hdr)
            if kind not in (b"C", b"<", b">", b"D"):
                raise DumpError(f"{path}: unknown record kind {kind!r} at offset {off}")
            data = f.read(n)
            if len(data) < n:
                raise DumpError(
                    f"{path}: truncated record at offset {off} ({len(data)} of {n} bytes)"
                )
            off += _REC.size + n
            yield kind, t, data
