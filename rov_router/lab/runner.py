"""Run a teaching scenario over real BGP sessions on loopback.

The embedded RTR cache serves the scenario's ROAs and ASPA records; the router under test runs
in this process (127.0.0.1, its own ExaBGP); every other AS is an ExaBGP speaker on its own
127.0.0.x address that dials the router.  Steps announce / withdraw routes, change RPKI data,
take the cache away and bring it back; after each step the expected outcomes are checked
(polling until they hold or a timeout passes).  The router is read through its status view
(``app.status``).

One file of ~550 lines on purpose: the timeline, its actions, checks and narration share the
run's state (speakers, cache, the router, the presenter gate); the MRT replay loop itself is
:func:`rov_router.bgp.mrt.replay_plan`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..app import App
from ..bgp import exabgp as X
from ..bgp.control import Speaker
from ..bgp.exabgp import (
    announce_command,
    mapped_next_hop,
    origin_attributes,
    withdraw_route_command,
)
from ..bgp.mrt import ReplayAnnounce, ReplayWait, ReplayWithdraw, read_updates, replay_plan
from ..bgp.speaker import PeerSpec
from ..config import NeighborConfig, RouterConfig, RPKISourceConfig
from ..procs import free_port
from ..rtr.cache import CacheState
from ..rtr.server import RTRServer
from ..status import LabStepView, LabView, TopologyNode
from .scenario import Expect, Scenario, Step


@dataclass
class StepResult:
    step: Step
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class LabResult:
    scenario: Scenario
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def first_failure(self) -> str | None:
        for s in self.steps:
            if s.failures:
                return f"step {s.step.index + 1} '{s.step.title}': {s.failures[0]}"
        return None


class Lab:
    def __init__(
        self,
        scenario: Scenario,
        *,
        display: str = "plain",
        speed: float = 1.0,
        check_timeout: float = 20.0,
        out: Callable[[str], None] | None = None,
        hold_at_end: float = 0.0,
        step_mode: bool = False,
        wait_key: Callable[[], Awaitable[bool]] | None = None,
        web: tuple[str, int] | None = None,
        step: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sc = scenario
        #: monotonic seconds: the replay timeline and the waits for checks
        self.clock = clock
        self.display = display
        self.speed = max(speed, 0.01)
        self.check_timeout = check_timeout
        self.out = out or (lambda s: print(s, flush=True))
        self.hold_at_end = hold_at_end
        # presenter mode: each step waits for a key press (the live table's space / Enter, or
        # a line on stdin without a terminal) instead of running on the timer
        self.step_mode = step_mode
        self._wait_key = wait_key
        self.workdir = Path(tempfile.mkdtemp(prefix="rov-lab-"))
        self.cache = CacheState(
            refresh=scenario.refresh, retry=scenario.retry, expire=scenario.expire
        )
        self.cache.set_data(scenario.roas, scenario.aspas)
        self.server: RTRServer | None = None
        self.app: App | None = None
        self.speakers: dict[int, Speaker] = {}
        self._narration: list[str] = []
        self._held: dict[int, tuple[set[str], list[int]]] = {}
        #: the web view (--web) and its presenter controls (--step)
        self.web_addr = web
        self.web = None
        self.presenter = PresenterGate(paused=step) if step else None
        self.view: LabView | None = None

    # ---- narration ---------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if self.view is not None:
            self.view.narration.append(text.rstrip())
        display = self.app.display if self.app is not None else None
        if display is not None:
            display.event({"message": text.strip().splitlines()[0]})
            if hasattr(display, "narrate"):
                # the live table keeps the lesson and the current step on screen, then what
                # happened in the step
                if text.startswith("== "):
                    display.lesson = text.strip()
                elif text.startswith("-- step"):
                    display.narrate(text.strip())
                else:
                    display.result(text.strip())
        elif self.display != "json":
            self.out(text)

    async def _next_step_key(self, step: Step) -> None:
        """Presenter mode: wait until the presenter asks for the next step."""
        prompt = (
            f"press space or Enter for step {step.index + 1}/{len(self.sc.steps)}: {step.title}"
        )
        display = self.app.display if self.app is not None else None
        if display is not None and hasattr(display, "wait_key"):
            if step.index == 0:
                display.narrate(prompt)
            else:  # under the last step's explanation and results
                display.result(prompt)
            await display.wait_key()
            return
        if self._wait_key is not None:
            self.out(prompt)
            await self._wait_key()
            return
        self.out(prompt + " (Enter)")
        line = await asyncio.get_running_loop().run_in_executor(None, _read_line)
        if not line:  # end of input: run the remaining steps on the timer
            self.step_mode = False

    # ---- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> LabResult:
        sc = self.sc
        results: list[StepResult] = []
        try:
            self.server = RTRServer(
                self.cache, "127.0.0.1", 0, notify_interval=0.2, on_event=lambda ev: None
            )
            await self.server.start()
            port = free_port()
            cfg = RouterConfig(
                path=sc.path,
                asn=sc.router_asn,
                router_id="127.0.0.1",
                listen="127.0.0.1",
                port=port,
                prefer_valid=sc.prefer_valid,
                display=self.display,
                neighbors=[
                    NeighborConfig(
                        a.address,
                        a.asn,
                        role=a.relation,
                        policy=a.policy,
                        aspa_policy=a.aspa_policy,
                        passive=True,
                        description=a.name,
                    )
                    for a in sc.ases
                ],
                control_socket=_control_socket(self.workdir),
                rpki=[
                    RPKISourceConfig(
                        cache=("127.0.0.1", self.server.port),
                        name="lab cache",
                        min_expire=min(600, sc.expire),
                    )
                ],
            )
            self.app = App(
                cfg,
                display=self.display if self.display != "quiet" else "plain",
                workdir=self.workdir,
                out=io.StringIO() if self.display == "quiet" else None,
            )
            await self._start_web()  # before the live display takes the terminal
            await self.app.start()
            if self.web is not None and self.app.display is not None:
                self.say(f"web view: {self.web.url}")  # also on the live display
            self.say(f"== {sc.title} ==\n{sc.lesson}".rstrip())
            for a in sc.ases:
                self.speakers[a.asn] = Speaker(
                    f"as{a.asn}",
                    [
                        PeerSpec(
                            "127.0.0.1",
                            sc.router_asn,
                            a.asn,
                            a.address,
                            a.address,
                            passive=False,
                            connect=port,
                        )
                    ],
                    self.workdir,
                ).start()
            await self._until(
                lambda: (
                    all(n.up for n in self.app.status.neighbors())
                    and self.app.status.rpki()[0].serial is not None
                ),
                60,
                "BGP sessions and RTR sync",
            )
            for step in sc.steps:
                if self.step_mode:
                    await self._next_step_key(step)
                await self._step_gate(step.index)
                res = StepResult(step)
                results.append(res)
                self.say(
                    f"-- step {step.index + 1}/{len(sc.steps)}: {step.title}"
                    + (f"\n   {step.explain}" if step.explain else "")
                )
                await self._do(step)
                await asyncio.sleep(step.wait / self.speed)
                for ex in step.expect:
                    problem = await self._check(ex)
                    if problem:
                        res.failures.append(problem)
                        self.say(f"   FAILED: expected {ex.describe()}: {problem}")
                    else:
                        self.say(f"   ok: {ex.describe()}")
                self._step_done(step.index, res.failures)
            if self.view is not None:
                self.view.done = True
                self.app.status.feed.note("lab", {"done": True})
            if self.hold_at_end:
                await asyncio.sleep(self.hold_at_end)
            if self.web is not None and self.hold_web:
                self.out(f"lab finished; the web view stays at {self.web.url} (Ctrl-C stops)")
                await asyncio.Event().wait()
            return LabResult(sc, results)
        finally:
            await self.close()

    async def close(self) -> None:
        if self.web is not None:
            await self.web.close()
            self.web = None
        if self.app is not None and self.app.final_summary is None:
            self.app.final_summary = self.app.status.summary()  # before the sessions close
        for sp in self.speakers.values():
            sp.stop()
        self.speakers.clear()
        if self.app is not None:
            await self.app.shutdown()
        if self.server is not None:
            await self.server.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    async def _until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        end = self.clock() + timeout
        while not cond():
            if self.clock() > end:
                raise TimeoutError(f"{what} not ready within {timeout:g} s")
            await asyncio.sleep(0.1)

    # ---- web view and presenter ---------------------------------------------------------------

    hold_web = True  #: keep the page up after the last step (the CLI turns it off for --check)

    async def _start_web(self) -> None:
        assert self.app is not None
        sc = self.sc
        st = self.app.status
        self.view = LabView(
            sc.name,
            sc.title,
            sc.lesson,
            [
                LabStepView(s.title, s.action, s.explain, [e.describe() for e in s.expect])
                for s in sc.steps
            ],
            presenter=self.presenter is not None,
            paused=self.presenter is not None and self.presenter.paused,
        )
        st.lab = self.view
        st.topology = [
            TopologyNode(a.address, a.asn, a.name, a.relation, a.address) for a in sc.ases
        ]
        observers = [a.asn for a in sc.ases if a.relation == "downstream"]
        st.observers = lambda: {asn: sorted(self._downstream_table(asn)) for asn in observers}
        if self.web_addr is None:
            return
        from ..web.server import WebServer

        controls = None
        if self.presenter is not None:
            gate, view, feed = self.presenter, self.view, st.feed

            def control(name: str):
                def fn() -> None:
                    getattr(gate, name)()
                    view.paused = gate.paused
                    feed.note("lab", {"control": name})

                return fn

            controls = {n: control(n) for n in ("next", "pause", "play")}
        self.web = WebServer(st, *self.web_addr, controls=controls)
        url = await self.web.start()
        if self.web.warning:
            self.out(f"warning: {self.web.warning}")
        self.out(f"web view: {url}" + ("  (presenter: Next / Pause / Play)" if controls else ""))

    async def _step_gate(self, index: int) -> None:
        if self.presenter is not None:
            if self.view is not None:
                self.view.paused = self.presenter.paused
                self.app.status.feed.note("lab", {"waiting": index})
            await self.presenter.wait()
        if self.view is not None:
            self.view.current = index
            self.view.steps[index].state = "running"
            self.view.paused = self.presenter.paused if self.presenter else False
            self.app.status.feed.note("lab", {"step": index})

    def _step_done(self, index: int, failures: list[str]) -> None:
        if self.view is not None:
            s = self.view.steps[index]
            s.state, s.failures = ("failed" if failures else "ok"), list(failures)
            self.app.status.feed.note("lab", {"step": index, "ok": not failures})

    # ---- actions -----------------------------------------------------------------------------

    async def _command(self, asn: int, cmd: str) -> None:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, self.speakers[asn].command, cmd)
        if answer != "done":
            raise RuntimeError(f"AS{asn}'s ExaBGP refused {cmd!r}: {answer}")

    def _next_hop(self, asn: int, prefix: str) -> str:
        return mapped_next_hop(self.sc.as_by_asn(asn).address, prefix)

    async def _do(self, st: Step) -> None:
        c = self.cache
        if st.action == "announce":
            assert st.origin_from is not None and st.prefix is not None
            nh = self._next_hop(st.origin_from, st.prefix)
            attrs = origin_attributes(nh, st.path)
            await self._command(st.origin_from, announce_command(None, attrs, [st.prefix]))
        elif st.action == "withdraw":
            assert st.origin_from is not None and st.prefix is not None
            nh = self._next_hop(st.origin_from, st.prefix)
            await self._command(st.origin_from, withdraw_route_command(st.prefix, nh))
        elif st.action == "add-roa":
            c.add_vrps([st.roa])
        elif st.action == "remove-roa":
            c.remove_vrps([st.roa])
        elif st.action == "set-aspa":
            assert st.aspa is not None
            c.set_aspa(st.aspa[0], st.aspa[1])
        elif st.action == "remove-aspa":
            assert st.aspa is not None
            c.set_aspa(st.aspa[0], None)
        elif st.action == "stop-cache":
            assert self.server is not None
            await self.server.stop()
        elif st.action == "start-cache":
            assert self.server is not None
            await self.server.start()
        elif st.action == "replay":
            await self._replay(st)

    async def _replay(self, st: Step) -> None:
        assert st.file is not None and st.origin_from is not None
        updates = list(read_updates(st.file))
        if not updates:
            return
        span = max(updates[-1].time - updates[0].time, 1.0)
        # the file's own timeline, compressed into about 'wait' seconds (then --speed)
        scale = span / max(st.wait, 1.0)
        asn = st.origin_from
        start = self.clock()
        for step in replay_plan(
            updates,
            next_hop=lambda prefix: self._next_hop(asn, prefix),
            speed=scale * self.speed,
            batch=1,  # one prefix at a time: each is narrated with its verdict
        ):
            if isinstance(step, ReplayWait):
                await asyncio.sleep(max(0.0, start + step.at - self.clock()))
            elif isinstance(step, ReplayAnnounce):
                attrs = origin_attributes(step.next_hop, step.path, step.as_set)
                await self._command(asn, announce_command(None, attrs, step.prefixes))
            elif isinstance(step, ReplayWithdraw):
                for prefix in step.prefixes:
                    await self._command(asn, withdraw_route_command(prefix))
            else:
                u = step.update
                stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(u.time))
                if step.path is None:
                    self.say(f"   replay {stamp}: AS{u.peer_as} withdraws {step.prefix}")
                    continue
                self.say(
                    f"   replay {stamp}: AS{u.peer_as} announces {step.prefix} "
                    f"path {' '.join(map(str, step.path))}"
                )
                await self._tell_verdict(asn, step.prefix, step.path[-1] if step.path else None)
        st.wait = 0.5  # the replay itself took the step's time

    async def _tell_verdict(self, asn: int, prefix: str, origin: int | None) -> None:
        """Narrate what the router made of a replayed announcement."""
        assert self.app is not None
        address = self.sc.as_by_asn(asn).address
        end = self.clock() + 5
        while self.clock() < end and self.app.status.neighbor_address(address) is not None:
            r = next(
                (v for v in self.app.status.route_views(prefix, address) if v.origin == origin),
                None,
            )
            if r is not None:
                act = "accepted" if r.accepted else "DROPPED"
                self.say(f"     -> {r.state}, {act}: {r.reason}")
                return
            await asyncio.sleep(0.05)

    # ---- checks ------------------------------------------------------------------------------

    async def _check(self, ex: Expect) -> str | None:
        end = self.clock() + self.check_timeout
        problem = None
        while self.clock() < end:
            problem = self._problem(ex)
            if problem is None:
                return None
            await asyncio.sleep(0.2)
        return problem

    def _problem(self, ex: Expect) -> str | None:
        assert self.app is not None
        if ex.at is not None:
            held = self._downstream_table(ex.at)
            missing = [p for p in ex.has if p not in held]
            extra = [p for p in ex.lacks if p in held]
            if missing:
                return f"AS{ex.at} does not hold {', '.join(missing)} (it holds {sorted(held) or 'nothing'})"
            if extra:
                return f"AS{ex.at} still holds {', '.join(extra)}"
            return None
        addr = self.sc.as_by_asn(ex.origin_from).address
        try:
            route = next(iter(self.app.status.route_views(ex.prefix, addr)), None)
        except ValueError:  # not a prefix: no route has it
            route = None
        if ex.verdict == "absent":
            return None if route is None else f"the route is present ({route.state})"
        if route is None:
            return "no such route at the router"
        if ex.verdict and route.state != ex.verdict:
            return f"verdict is {route.state}: {route.reason}"
        if ex.aspa and route.aspa != ex.aspa:
            reason = route.aspa_reason if route.aspa_reason is not None else "no ASPA verdict"
            return f"ASPA verdict is {route.aspa}: {reason}"
        if ex.accepted is not None and route.accepted != ex.accepted:
            return f"it is {'accepted' if route.accepted else 'dropped'} ({route.action})"
        return None

    def _downstream_table(self, asn: int) -> set[str]:
        """What a downstream AS holds: its received UPDATEs folded in order (only the lines
        that arrived since the last call are parsed)."""
        held, seen = self._held.setdefault(asn, (set(), [0]))
        new = self.speakers[asn].lines[seen[0] :]  # a snapshot: the reader thread appends
        seen[0] += len(new)
        for line in new:
            with contextlib.suppress(X.LineError):
                ev = X.parse_line(line)
                if isinstance(ev, X.Update):
                    for _f, p in ev.withdrawn:
                        held.discard(p)
                    for _f, p, _a in ev.announced:
                        held.add(p)
                elif isinstance(ev, X.PeerState) and ev.state == "down":
                    held.clear()
        return held


class PresenterGate:
    """Next / pause / play for a presenter: while paused, each step waits for 'next'."""

    def __init__(self, paused: bool = True) -> None:
        self.paused = paused
        self._go = asyncio.Event()

    def next(self) -> None:
        self._go.set()

    def pause(self) -> None:
        self.paused = True

    def play(self) -> None:
        self.paused = False
        self._go.set()

    async def wait(self) -> None:
        if self.paused:
            await self._go.wait()
        self._go.clear()


def _control_socket(workdir: Path) -> Path:
    """The usual control socket, so 'rov-router show' works during a lab, unless another
    router already answers there."""
    import socket

    from ..ops.control import ControlSocketError, default_socket

    try:
        p = default_socket(create=True)
    except (ControlSocketError, OSError):
        return workdir / "control.sock"
    if p.exists():
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(p))
            except OSError:
                return p
            return workdir / "control.sock"
    return p


def _read_line() -> str:
    import sys

    try:
        return sys.stdin.readline()
    except (OSError, ValueError):
        return ""
