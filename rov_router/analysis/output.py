"""The analysis as terminal tables (rich), JSON, CSV and a self-contained HTML report.

The HTML report has no scripts and no external resources: its charts are inline SVG, so it
opens anywhere, offline.

Over 500 lines because the four renderings of one report are kept together, so that a field
added to the report is added to all of them in one place.
"""

from __future__ import annotations

import csv
import html
import io
import time
from typing import Any

from .audit import AuditResult
from .report import CATEGORIES, DEFAULT_ROUTE, LESS_SPECIFIC, SAME_PREFIX, Report, no_gc
from .whatif import WhatIfResult


def say(con, text: str) -> None:
    """Print data as it is: no rich markup (an ASPA label like ``[...]`` is not a style)."""
    con.print(text, markup=False, highlight=False)


def _origin(o: int | None) -> str:
    return "NONE" if o is None else f"AS{o}"


def _cover_json(report: Report, c: tuple[str, int] | None, states=None) -> dict | None:
    if c is None:
        return None
    kind, j = c
    t = report.table
    st = states[j] if states is not None else report.states[j]
    return {"kind": kind, "prefix": t.prefix(j), "origin": t.origins[j], "state": str(st)}


def _route_json(report: Report, i: int) -> dict[str, Any]:
    t = report.table
    d: dict[str, Any] = {"prefix": t.prefix(i), "origin": t.origins[i]}
    if t.peers is not None:
        d["peer"] = t.peers[i]
    if t.paths is not None and t.as_sets is not None:
        d["path"] = " ".join(map(str, t.paths[i])) + (
            " {" + ",".join(map(str, t.as_sets[i])) + "}" if t.as_sets[i] else ""
        )
    return d


def to_json(
    report: Report,
    whatif: WhatIfResult | None = None,
    audit: AuditResult | None = None,
    *,
    top: int = 10,
    routes: bool = True,
) -> dict[str, Any]:
    """Everything as one JSON document; ``routes`` adds every invalid route with its reason."""
    t = report.table
    doc: dict[str, Any] = {
        "table": {"source": t.source, "kind": t.kind, "routes": len(t), "lines": t.lines},
        "vrps": report.vrps,
        "aspas": report.aspas,
        "states": report.counts(),
        "invalid_categories": report.category_counts(),
        "invalid_cover": report.cover_counts(),
        "top_origins": report.top_origins(top),
        "top_vrps": report.top_vrps(top),
        "aspa": None,
    }
    if report.aspa is not None:
        doc["aspa"] = {"customers": report.aspa.customers, "assumptions": report.aspa.counts()}
    if routes:
        out = []
        with no_gc():
            for i in report.invalid:
                d = _route_json(report, i)
                d["category"] = report.categories[i]
                d["reason"] = report.verdict(i).reason
                d["cover"] = _cover_json(report, report.cover[i])
                out.append(d)
        doc["invalid_routes"] = out
    if whatif is not None:
        doc["what_if"] = whatif_json(report, whatif)
    if audit is not None:
        doc["audit"] = audit_json(report, audit)
    return doc


def whatif_json(report: Report, w: WhatIfResult) -> dict[str, Any]:
    changes = []
    for c in w.routes:
        d = _route_json(report, c.index)
        d.update(
            {
                "before": c.before,
                "after": c.after,
                "reason_before": c.before_verdict.reason,
                "reason_after": c.after_verdict.reason,
            }
        )
        if c.after_verdict.state.value == "invalid":
            d["cover_after"] = (
                None
                if c.cover_after is None
                else {
                    "kind": c.cover_after[0],
                    "prefix": report.table.prefix(c.cover_after[1]),
                    "origin": report.table.origins[c.cover_after[1]],
                }
            )
        if c.router:
            d["router"] = c.router
        changes.append(d)
    aspa = []
    for a in w.aspa:
        d = _route_json(report, a.index)
        d.update({"assumption": a.assumption, "before": a.before, "after": a.after})
        if a.router:
            d["router"] = a.router
        aspa.append(d)
    doc: dict[str, Any] = {
        "change": w.change.describe(),
        "notes": w.change.notes,
        "revalidated": w.revalidated,
        "changed": len(w.routes),
        "transitions": w.transitions(),
        "routes": changes,
    }
    if report.table.router_accepted is not None:
        doc["router"] = w.router_counts()
    if w.change.aspa:
        doc["aspa_revalidated"] = w.aspa_revalidated
        doc["aspa_changes"] = aspa
    return doc


def audit_json(report: Report, a: AuditResult) -> dict[str, Any]:
    t = report.table
    return {
        "asns": a.asns,
        "prefixes": a.prefixes,
        "classes": a.label_counts(),
        "roas": [
            {
                "roa": str(r.vrp),
                "prefix": r.vrp.prefix,
                "maxLength": r.vrp.maxlen,
                "asn": r.vrp.asn,
                "classes": r.labels,
                "authorizes": [t.prefix(i) for i in r.authorizes],
                "disallows": [{"prefix": t.prefix(i), "origin": t.origins[i]} for i in r.disallows],
                "redundant_with": str(r.redundant_with) if r.redundant_with else None,
                "unseen_more_specifics": r.unseen_more_specifics,
                "explanation": r.explain(report),
            }
            for r in a.roas
        ],
        "routes": [{**_route_json(report, i), "state": _state_label(report, i)} for i in a.routes],
        "foreign_routes": [
            {**_route_json(report, i), "state": _state_label(report, i)} for i in a.foreign
        ],
        "suggested_roas": [
            {"prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn, "roa": str(v)}
            for v in a.suggestions
        ],
    }


def _state_label(report: Report, i: int) -> str:
    return report.categories.get(i) or str(report.states[i])


# ---- CSV -----------------------------------------------------------------------------------


def to_csv(report: Report, whatif: WhatIfResult | None, audit: AuditResult | None) -> str:
    """One table: the what-if changes when a change was given, else the audited ROAs, else
    every invalid route with its category, covering route and reason."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    t = report.table
    if whatif is not None:
        w.writerow(
            [
                "prefix",
                "origin",
                "peer",
                "before",
                "after",
                "router",
                "cover_after",
                "reason_before",
                "reason_after",
            ]
        )
        for c in whatif.routes:
            i = c.index
            cov = ""
            if c.cover_after is not None:
                cov = f"{c.cover_after[0]} {t.prefix(c.cover_after[1])}"
            w.writerow(
                [
                    t.prefix(i),
                    _origin(t.origins[i]),
                    t.peers[i] if t.peers is not None else "",
                    c.before,
                    c.after,
                    c.router or "",
                    cov,
                    c.before_verdict.reason,
                    c.after_verdict.reason,
                ]
            )
        return buf.getvalue()
    if audit is not None:
        w.writerow(["roa", "prefix", "maxLength", "asn", "classes", "explanation"])
        for r in audit.roas:
            w.writerow(
                [
                    str(r.vrp),
                    r.vrp.prefix,
                    r.vrp.maxlen,
                    r.vrp.asn,
                    " ".join(r.labels),
                    r.explain(report),
                ]
            )
        for v in audit.suggestions:
            w.writerow(
                [str(v), v.prefix, v.maxlen, v.asn, "SUGGESTED", "minimal ROA for seen routes"]
            )
        return buf.getvalue()
    w.writerow(
        [
            "prefix",
            "origin",
            "peer",
            "category",
            "cover",
            "cover_prefix",
            "cover_origin",
            "cover_state",
            "reason",
        ]
    )
    for i in report.invalid:
        c = report.cover[i]
        w.writerow(
            [
                t.prefix(i),
                _origin(t.origins[i]),
                t.peers[i] if t.peers is not None else "",
                report.categories[i],
                c[0] if c else "none",
                t.prefix(c[1]) if c else "",
                _origin(t.origins[c[1]]) if c else "",
                str(report.states[c[1]]) if c else "",
                report.verdict(i).reason,
            ]
        )
    return buf.getvalue()


# ---- terminal ------------------------------------------------------------------------------


def print_text(
    report: Report,
    whatif: WhatIfResult | None,
    audit: AuditResult | None,
    *,
    top: int = 10,
    limit: int = 50,
    console=None,
) -> None:
    from rich.console import Console
    from rich.table import Table as RTable

    con = console or Console()
    t = report.table
    n = len(t) or 1
    counts = report.counts()
    con.print(
        f"[bold]ROV on {t.source}[/bold]: {len(t)} routes, {report.vrps} VRPs, "
        f"{report.aspas} ASPA records",
        highlight=False,
    )
    st = RTable()
    st.add_column("state")
    st.add_column("routes", justify="right")
    st.add_column("share", justify="right")
    for k, v in counts.items():
        st.add_row(k, str(v), f"{100 * v / n:.1f} %")
    con.print(st)
    ninv = len(report.invalid) or 1
    ct = RTable(title="Invalid routes")
    ct.add_column("category / covering route")
    ct.add_column("routes", justify="right")
    ct.add_column("share of invalid", justify="right")
    for k, v in report.category_counts().items():
        ct.add_row(k, str(v), f"{100 * v / ninv:.1f} %")
    labels = {
        SAME_PREFIX: "covered: same prefix valid / not-found",
        LESS_SPECIFIC: "covered: less specific valid / not-found",
        DEFAULT_ROUTE: "covered only by a default route (/0)",
        "none": "no cover: unreachable if dropped",
    }
    for k, v in report.cover_counts().items():
        ct.add_row(labels[k], str(v), f"{100 * v / ninv:.1f} %")
    con.print(ct)
    if report.invalid:
        ot = RTable(title=f"Top {top} origin ASes by invalid routes")
        for c in ("origin", "invalid", "AS", "length", "AS+length", "no cover"):
            ot.add_column(c, justify="right" if c != "origin" else "left")
        for r in report.top_origins(top):
            ot.add_row(
                _origin(r["origin"]),
                str(r["invalid"]),
                *(str(r[c]) for c in CATEGORIES),
                str(r["uncovered"]),
            )
        con.print(ot)
        vt = RTable(title=f"Top {top} VRPs by invalid routes they cover")
        vt.add_column("VRP")
        vt.add_column("invalid routes covered", justify="right")
        for r in report.top_vrps(top):
            vt.add_row(r["vrp"], str(r["invalids"]))
        con.print(vt)
    if report.aspa is not None:
        at = RTable(title=f"ASPA ({report.aspa.customers} customer ASes attested)")
        at.add_column("role assumption")
        for s in ("valid", "invalid", "unknown"):
            at.add_column(s, justify="right")
        for label, c in report.aspa.counts().items():
            at.add_row(label, *(str(c.get(s, 0)) for s in ("valid", "invalid", "unknown")))
        con.print(at)
    else:
        con.print("ASPA: the table has no AS paths (pfx2as / PREFIX ASN input): not evaluated")
    if whatif is not None:
        _print_whatif(con, report, whatif, limit)
    if audit is not None:
        _print_audit(con, report, audit, limit)


def _print_whatif(con, report: Report, w: WhatIfResult, limit: int) -> None:
    t = report.table
    con.print("[bold]What-if[/bold]: ", end="")
    say(con, "; ".join(w.change.describe()))
    for note in w.change.notes:
        say(con, f"  note: {note}")
    con.print(
        f"  revalidated {w.revalidated} routes covered by the change; {len(w.routes)} change state"
    )
    for k, v in w.transitions().items():
        say(con, f"    {v:>8}  {k}")
    if t.router_accepted is not None:
        rc = w.router_counts()
        say(
            con,
            f"  on the running router: {rc['dropped']} would be dropped, "
            f"{rc['re-admitted']} re-admitted (router not changed)",
        )
    if w.routes:
        con.print("[bold]Routes that change[/bold] (before -> after: why, after the change)")
        for c in w.routes[:limit]:
            i = c.index
            peer = f" from {t.peers[i]}" if t.peers is not None and t.peers[i] else ""
            router = f"  [router: would be {c.router}]" if c.router else ""
            say(
                con,
                f"  {t.prefix(i)} {_origin(t.origins[i])}{peer}: {c.before} -> {c.after}{router}",
            )
            say(con, f"      {c.after_verdict.reason}")
            if c.after_verdict.state.value == "invalid":
                cov = (
                    f"{c.cover_after[0]} {t.prefix(c.cover_after[1])} "
                    f"{_origin(t.origins[c.cover_after[1]])} still carries the traffic"
                    if c.cover_after
                    else "no covering route: unreachable if dropped"
                )
                say(con, f"      {cov}")
        if len(w.routes) > limit:
            say(con, f"  ... {len(w.routes) - limit} more (--limit, or --json / --csv for all)")
    if w.change.aspa:
        con.print(
            f"  ASPA: revalidated {w.aspa_revalidated} paths through the changed ASes; "
            f"{len(w.aspa)} state changes"
        )
        for a in w.aspa[:limit]:
            say(
                con,
                f"    {t.prefix(a.index)} path {' '.join(map(str, t.paths[a.index]))}  "  # type: ignore[index]
                f"[{a.assumption}] {a.before} -> {a.after}"
                + (f"  [router: would be {a.router}]" if a.router else ""),
            )


def _print_audit(con, report: Report, a: AuditResult, limit: int) -> None:
    from rich.table import Table as RTable

    who = " ".join([*(f"AS{x}" for x in a.asns), *a.prefixes])
    rt = RTable(title=f"ROA audit for {who}: {len(a.roas)} ROAs, {len(a.routes)} routes")
    rt.add_column("ROA")
    rt.add_column("classes")
    rt.add_column("why")
    for r in a.roas[:limit]:
        rt.add_row(str(r.vrp), ", ".join(r.labels), r.explain(report))
    con.print(rt)
    if len(a.roas) > limit:
        say(con, f"  ... {len(a.roas) - limit} more ROAs (--limit, or --json)")
    t = report.table
    if a.routes:
        con.print("The holder's routes:")
        for i in a.routes[:limit]:
            say(con, f"  {t.prefix(i):<22} {_origin(t.origins[i]):<10} {_state_label(report, i)}")
    if a.foreign:
        say(con, f"Routes in the holder's space from other origins ({len(a.foreign)}):")
        for i in a.foreign[:limit]:
            say(con, f"  {t.prefix(i):<22} {_origin(t.origins[i]):<10} {_state_label(report, i)}")
    con.print("Suggested ROAs (make every one of the holder's routes valid, allow nothing else):")
    for v in a.suggestions:
        say(con, f"  {v}")


# ---- HTML ----------------------------------------------------------------------------------

_COLORS = {
    "valid": "#2e7d32",
    "invalid": "#c62828",
    "not-found": "#757575",
    "unknown": "#9e9e9e",
    "invalid-as": "#c62828",
    "invalid-length": "#ef6c00",
    "invalid-as-length": "#6a1b9a",
    SAME_PREFIX: "#2e7d32",
    LESS_SPECIFIC: "#558b2f",
    DEFAULT_ROUTE: "#f9a825",
    "none": "#c62828",
}


def svg_bars(items: list[tuple[str, int]], *, width: int = 560, color: str = "#1565c0") -> str:
    """A horizontal bar chart as an inline SVG element."""
    if not items:
        return "<p>(nothing)</p>"
    esc = html.escape
    row = 22
    label_w = 230
    h = row * len(items) + 6
    top = max(v for _k, v in items) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
        f'role="img" font-family="sans-serif" font-size="12">'
    ]
    for n, (k, v) in enumerate(items):
        y = n * row + 3
        w = int((width - label_w - 70) * v / top)
        c = _COLORS.get(k, color)
        parts.append(f'<text x="0" y="{y + 14}">{esc(k)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1)}" height="{row - 6}" fill="{c}">'
            f"<title>{esc(k)}: {v}</title></rect>"
        )
        parts.append(f'<text x="{label_w + max(w, 1) + 4}" y="{y + 14}">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    out = ["<table><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def to_html(
    report: Report,
    whatif: WhatIfResult | None = None,
    audit: AuditResult | None = None,
    *,
    top: int = 10,
    limit: int = 500,
) -> str:
    esc = html.escape
    t = report.table
    body: list[str] = []
    body.append(f"<h1>ROV analysis of {esc(t.source)}</h1>")
    body.append(
        f"<p>{len(t)} routes, {report.vrps} VRPs, {report.aspas} ASPA records. "
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by rov-router.</p>"
    )
    body.append("<h2>Route origin validation</h2>")
    body.append(svg_bars(list(report.counts().items())))
    body.append("<h2>Invalid routes by category</h2>")
    body.append(svg_bars(list(report.category_counts().items())))
    body.append(
        "<p>invalid-as: no covering VRP names the origin; invalid-length: the origin is "
        "authorized but not at this length; invalid-as-length: neither.</p>"
    )
    body.append("<h2>Would dropping the invalids blackhole anything?</h2>")
    body.append(svg_bars(list(report.cover_counts().items())))
    body.append(
        "<p>same-prefix / less-specific: a valid or not-found route covers the invalid one, "
        "traffic shifts there. default-route: only a default route (/0) covers it. none: the "
        "space becomes unreachable from this table.</p>"
    )
    if report.invalid:
        tops = report.top_origins(top)
        body.append(f"<h2>Top {top} origin ASes by invalid routes</h2>")
        body.append(svg_bars([(_origin(r["origin"]), r["invalid"]) for r in tops]))
        body.append(
            _table(
                ["origin", "invalid", *CATEGORIES, "no cover"],
                [
                    [
                        _origin(r["origin"]),
                        r["invalid"],
                        *(r[c] for c in CATEGORIES),
                        r["uncovered"],
                    ]
                    for r in tops
                ],
            )
        )
        tv = report.top_vrps(top)
        body.append(f"<h2>Top {top} VRPs by invalid routes they cover</h2>")
        body.append(svg_bars([(r["vrp"], r["invalids"]) for r in tv]))
    body.append("<h2>ASPA</h2>")
    if report.aspa is None:
        body.append("<p>The table has no AS paths: ASPA not evaluated.</p>")
    else:
        for label, c in report.aspa.counts().items():
            body.append(f"<h3>{esc(label)}</h3>")
            body.append(svg_bars([(s, c.get(s, 0)) for s in ("valid", "invalid", "unknown")]))
    if whatif is not None:
        body.append("<h2>What-if</h2>")
        body.append(
            "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in whatif.change.describe()) + "</ul>"
        )
        body.append(f"<p>{whatif.revalidated} routes revalidated; {len(whatif.routes)} change.</p>")
        body.append(svg_bars(list(whatif.transitions().items())))
        rows = []
        for c in whatif.routes[:limit]:
            i = c.index
            rows.append(
                [
                    t.prefix(i),
                    _origin(t.origins[i]),
                    f"{c.before} -> {c.after}",
                    c.router or "",
                    c.after_verdict.reason,
                ]
            )
        body.append(_table(["prefix", "origin", "change", "router", "reason after"], rows))
    if audit is not None:
        body.append("<h2>ROA audit</h2>")
        body.append(svg_bars(list(audit.label_counts().items())))
        body.append(
            _table(
                ["ROA", "classes", "why"],
                [[str(r.vrp), ", ".join(r.labels), r.explain(report)] for r in audit.roas[:limit]],
            )
        )
        body.append("<h3>Suggested ROAs</h3>")
        body.append("<pre>" + "\n".join(esc(str(v)) for v in audit.suggestions) + "</pre>")
    if report.invalid:
        body.append(f"<h2>Invalid routes (first {min(limit, len(report.invalid))})</h2>")
        rows = []
        for i in report.invalid[:limit]:
            rows.append(
                [
                    t.prefix(i),
                    _origin(t.origins[i]),
                    report.categories[i],
                    report.cover_text(i),
                    report.verdict(i).reason,
                ]
            )
        body.append(_table(["prefix", "origin", "category", "covering route", "reason"], rows))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:left}h2{margin-top:1.6em}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>rov-router analysis</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
