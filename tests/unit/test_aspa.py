"""ASPA AS_PATH verification against the 25 published examples (Sriram, Borchert, Matejka,
2025) and the draft's rule cases (tests/data/aspa-examples.json)."""

from __future__ import annotations

import json

import pytest

from rov_router.rpki.aspa import ASPAState, verify
from tests.support.env import DATA

DOC = json.loads((DATA / "aspa-examples.json").read_text())


def providers_of(case: dict):
    table = {int(c): frozenset(p) for c, p in case["aspa"].items()}
    return table.get


def run(case: dict):
    return verify(
        case["as_path"],
        providers_of(case),
        algorithm=case["algorithm"],
        neighbor_as=case["neighbor_as"],
        as_set=case.get("as_set"),
        receiver_is_rs_client=case.get("receiver_is_rs_client", False),
    )


def test_all_published_examples_are_here():
    assert len(DOC["examples"]) == 25


@pytest.mark.parametrize("case", DOC["examples"], ids=lambda c: c["id"])
def test_published_example(case):
    res = run(case)
    assert res.state == ASPAState(case["expected"])
    dv = case["doc_values"]
    assert res.n == dv["N"]
    assert (res.max_up, res.min_up) == (dv["max_up_ramp"], dv["min_up_ramp"])
    if case["algorithm"] == "downstream":
        assert (res.max_down, res.min_down) == (dv["max_down_ramp"], dv["min_down_ramp"])
    else:
        assert (res.max_down, res.min_down) == (0, 0)  # the draft sets them to 0 upstream


@pytest.mark.parametrize(
    "case", DOC["draft_rule_cases"] + DOC["earlier_version_examples"], ids=lambda c: c["id"]
)
def test_rule_cases(case):
    assert run(case).state == ASPAState(case["expected"])


def test_reason_names_the_leak():
    aspa = {64500: frozenset({64502}), 64501: frozenset({64510})}
    # route from customer 64501: 64500 sent it to 64501, which is not its provider
    res = verify([64501, 64500], aspa.get, algorithm="upstream", neighbor_as=64501)
    assert res.state == ASPAState.INVALID and res.bad_hops == ((64500, 64501),)
    assert res.reason.startswith("AS64500 -> AS64501 is not an attested provider hop")
    assert "route leaked by AS64501" in res.reason
    unknown = verify([64501, 64499], aspa.get, algorithm="upstream", neighbor_as=64501)
    assert unknown.state == ASPAState.UNKNOWN and "AS64499" in unknown.reason


def test_prepends_collapse():
    aspa = {64500: frozenset({64501})}
    res = verify(
        [64501, 64501, 64500, 64500, 64500], aspa.get, algorithm="upstream", neighbor_as=64501
    )
    assert res.state == ASPAState.VALID and res.n == 2
