"""What every command shares: the exit-status exceptions, small argparse types, the
asyncio helpers for interruptible work and the atomic file write."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any


class CLIError(Exception):
    """A usage or input problem: one line on stderr, exit status ``status`` (2 by default)."""

    status = 2


class Failed(CLIError):
    """Bad input or a failed operation (an unreadable file, no sync in time): exit status 1."""

    status = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) turned into an exception, so ``finally`` blocks stop children."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status = 128 + signum


def raise_terminated(signum: int, _frame) -> None:
    raise Terminated(signum)


def hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]")
    return host, int(port)


def check_ports(args) -> None:
    """HOST:PORT options with a port above 65535: one line, exit 1 (not an OverflowError)."""
    for key, value in vars(args).items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[1], int)
                and not 0 <= item[1] <= 65535
            ):
                opt = "--" + key.replace("_", "-")
                raise Failed(f"{opt} {item[0]}:{item[1]}: port must be 0-65535")


WEB_DEFAULT = "127.0.0.1:0"


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    """--web [ADDR:PORT]: the browser view, see docs/web.md."""
    parser.add_argument(
        "--web",
        nargs="?",
        const=WEB_DEFAULT,
        type=hostport_or_port,
        metavar="ADDR:PORT",
        help="serve the web view (default 127.0.0.1 on a free port; the URL is printed)",
    )


def hostport_or_port(text: str) -> tuple[str, int]:
    if text.isdigit():
        return "127.0.0.1", int(text)
    return hostport(text)


def rtr_version_arg(text: str) -> int:
    if text not in ("0", "1", "2"):
        raise argparse.ArgumentTypeError("RTR version must be 0, 1 or 2")
    return int(text)


def fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction 0..1 (0.5 = 50 %), got {text!r}")
    return v


def verbose_parent() -> argparse.ArgumentParser:
    """The options every subcommand takes (-v), as an argparse parent."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (-vv for debug)",
    )
    return common


async def interruptible(
    work: Coroutine[Any, Any, int], stop: Callable[[], None] | None = None
) -> int:
    """Run ``work``; SIGINT / SIGTERM call ``stop`` and cancel it (its ``finally`` blocks
    still run), and the result is the conventional 130 / 143."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    got: list[int] = []

    def on_signal(sig: int) -> None:
        if not got:
            got.append(sig)
        if stop is not None:
            stop()
        task.cancel()

    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        status = await task
    except asyncio.CancelledError:
        if not got:
            raise
        status = 0
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)
        signal.signal(signal.SIGTERM, raise_terminated)
    return 128 + got[0] if got else status


async def stop_within(task: asyncio.Future, stop: Callable[[], None], timeout: float = 1.0) -> None:
    """Ask a background task to stop; cancel it if it has not ended within ``timeout``."""
    stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def atomic_write(path: Path, text: str | None) -> None:
    """Write a file so that a reader sees the old or the new content, never half of it: a
    temporary file in the same directory, flushed to disk, then renamed over the target."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text or "")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
