"""``rov-router lab``: a teaching scenario from topologies/ over real BGP sessions."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from ..resources import shipped
from ._common import CLIError, Terminated, add_web_arguments, verbose_parent


def add_parser(subparsers) -> None:
    """``lab``: a teaching scenario over real BGP sessions."""
    lb = subparsers.add_parser(
        "lab",
        parents=[verbose_parent()],
        help="run a teaching scenario from topologies/ over real BGP sessions on loopback",
    )
    lb.add_argument("scenario", nargs="?", help="a scenario TOML file or its name")
    lb.add_argument("--list", action="store_true", help="list the scenarios")
    lb.add_argument(
        "--check",
        action="store_true",
        help="headless: check every expected outcome, exit 1 naming the first failure",
    )
    lb.add_argument("--speed", type=float, default=1.0, help="timeline speed factor (1)")
    lb.add_argument(
        "--step",
        action="store_true",
        help="presenter mode: each step waits for space / Enter (with --web: for Next in the page) "
        "instead of the timer",
    )
    lb.add_argument("--json", action="store_true", help="JSON output (with --check)")
    add_web_arguments(lb)
    lb.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds an expected outcome may take to appear (20)",
    )


TOPOLOGIES = shipped("topologies")


def _find_scenario(name: str) -> Path:
    p = Path(name)
    if p.exists():
        return p
    cand = TOPOLOGIES / (name if name.endswith(".toml") else name + ".toml")
    if cand.exists():
        return cand
    raise CLIError(f"no scenario {name!r} (try 'rov-router lab --list')")


def run(args, default: str | None = None) -> int:
    from ..lab.runner import Lab
    from ..lab.scenario import ScenarioError, list_scenarios, load_scenario

    if getattr(args, "list", False):
        try:
            for sc in list_scenarios(TOPOLOGIES):
                print(f"{sc.name:28s} {sc.summary}")
        except ScenarioError as e:
            raise CLIError(str(e)) from None
        return 0
    name = args.scenario or default
    if not name:
        raise CLIError("give a scenario (rov-router lab --list shows them)")
    try:
        sc = load_scenario(_find_scenario(name))
    except ScenarioError as e:
        raise CLIError(str(e)) from None
    check = getattr(args, "check", False)
    if check:
        display = "json" if args.json else "plain"
    else:
        display = "live" if sys.stdout.isatty() else "plain"
    lab = Lab(
        sc,
        check_timeout=getattr(args, "timeout", 20.0),
        display=display,
        speed=args.speed,
        hold_at_end=0.0 if check or display != "live" else 5.0,
        # --step: the presenter advances with a key in the terminal, or with Next in the page
        step_mode=getattr(args, "step", False) and not check and getattr(args, "web", None) is None,
        web=getattr(args, "web", None),
        step=getattr(args, "step", False) and not check and getattr(args, "web", None) is not None,
    )
    lab.hold_web = not check

    async def run_lab():
        # a terminal closing (SIGHUP) or SIGTERM must still stop every ExaBGP we started
        task = asyncio.ensure_future(lab.run())
        loop = asyncio.get_running_loop()
        got: list[int] = []

        def on_signal(sig: int) -> None:
            got.append(sig)
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await task
        except asyncio.CancelledError:
            raise Terminated(got[0] if got else signal.SIGINT) from None

    res = asyncio.run(run_lab())
    failure = res.first_failure()
    if args.json and check:
        print(
            json.dumps(
                {
                    "scenario": sc.name,
                    "ok": res.ok,
                    "first_failure": failure,
                    "steps": [
                        {"title": s.step.title, "ok": s.ok, "failures": s.failures}
                        for s in res.steps
                    ],
                }
            )
        )
    elif failure:
        print(f"rov-router lab: {sc.name}: FAILED at {failure}", file=sys.stderr)
    else:
        print(
            f"{sc.name}: all {sum(len(s.step.expect) for s in res.steps)} expected outcomes "
            f"held in {len(res.steps)} steps"
        )
    return 0 if res.ok else 1
