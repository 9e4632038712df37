"""Drive an ExaBGP speaker from ordinary (threaded) code: announce / withdraw at run time.

A :class:`Speaker` starts ExaBGP with one or more neighbors and the bridge as its process; a
background thread accepts the bridge connection, keeps every line ExaBGP sends, and answers
:meth:`Speaker.command` with ExaBGP's ``done`` / ``error``.  Used by the tests and the lab
scenarios for the upstream / downstream ASes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

from .speaker import ExaBGP, PeerSpec, SpeakerSpec


class Speaker:
    def __init__(
        self,
        name: str,
        peers: list[PeerSpec],
        workdir: Path,
        *,
        listen: list[str] | None = None,
        port: int = 179,
    ) -> None:
        self.workdir = workdir
        self.sock_path = workdir / f"{name}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(str(self.sock_path))
        self._srv.listen(1)
        self.exabgp = ExaBGP(
            SpeakerSpec(name, peers, listen=listen or [], port=port, socket=self.sock_path), workdir
        )
        self.lines: list[str] = []
        self._answers: list[str] = []
        self._cv = threading.Condition()
        self._conn: socket.socket | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> Speaker:
        self._thread.start()
        self.exabgp.start()
        return self

    def _accept(self) -> None:
        try:
            conn, _ = self._srv.accept()
        except OSError:
            return
        with self._cv:
            self._conn = conn
            self._cv.notify_all()
        with conn.makefile("rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._cv:
                    if line.startswith("{"):
                        self.lines.append(line)
                    else:
                        self._answers.append(line)
                    self._cv.notify_all()

    def command(self, cmd: str, timeout: float = 20.0) -> str:
        """Send one command and wait for its answer (``done`` / ``error``)."""
        with self._cv:
            if not self._cv.wait_for(lambda: self._conn is not None or self._stopped, timeout):
                raise TimeoutError(
                    f"ExaBGP {self.exabgp.spec.name} never started its process:\n"
                    + self.exabgp.tail()
                )
            if self._stopped:
                raise ConnectionError(f"ExaBGP {self.exabgp.spec.name} was stopped")
            n = len(self._answers)
            assert self._conn is not None
            self._conn.sendall((cmd + "\n").encode())
            if not self._cv.wait_for(lambda: len(self._answers) > n or self._stopped, timeout):
                raise TimeoutError(f"no answer to {cmd!r}")
            if len(self._answers) <= n:  # stopped while waiting: wake the caller now
                raise ConnectionError(f"ExaBGP {self.exabgp.spec.name} was stopped")
            return self._answers[n]

    def messages(self, kind: str | None = None) -> list[dict]:
        with self._cv:
            out = [json.loads(x) for x in self.lines]
        return [m for m in out if kind is None or m.get("type") == kind]

    def wait_state(self, peer: str, state: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in reversed(self.messages("state")):
                if m["neighbor"]["address"]["peer"] == peer:
                    if m["neighbor"]["state"] == state:
                        return
                    break
            if not self.exabgp.running:
                raise RuntimeError(f"ExaBGP {self.exabgp.spec.name} exited:\n" + self.exabgp.tail())
            time.sleep(0.05)
        raise TimeoutError(
            f"{self.exabgp.spec.name}: neighbor {peer} not {state} in {timeout} s:\n"
            + self.exabgp.tail()
        )

    def stop(self) -> None:
        with self._cv:
            self._stopped = True  # a command() waiting in another thread returns at once
            self._cv.notify_all()
        self.exabgp.stop()
        with contextlib.suppress(OSError):
            self._srv.close()
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)
