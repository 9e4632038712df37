// rov-router web view: reads /events (Server-Sent Events) and /api/*; plain SVG, no libraries.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 900, H = 520, RX = 450, RY = 260;
  const $ = (id) => document.getElementById(id);
  let doc = null;
  let routesDirty = true;
  let lastRoutesFetch = 0;
  let lastSeqRoutes = -1;
  let selected = null;

  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function h(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function asText(origin) { return origin === null || origin === undefined ? "NONE" : "AS" + origin; }

  // ---- layout: providers above, customers below, peers beside, observers right ----
  function layout(nodes) {
    const pos = {};
    const rows = { top: [], bottom: [], left: [], right: [], cache: [] };
    for (const n of nodes) {
      if (n.relation === "router") { pos[n.id] = [RX, RY]; continue; }
      if (n.relation === "cache") rows.cache.push(n);
      else if (["provider", "upstream", "route-server"].includes(n.relation)) rows.top.push(n);
      else if (["customer", "rs-client"].includes(n.relation)) rows.bottom.push(n);
      else if (n.relation === "downstream") rows.right.push(n);
      else rows.left.push(n);
    }
    const spread = (list, fn) => list.forEach((n, i) => { pos[n.id] = fn(i, list.length); });
    spread(rows.top, (i, k) => [RX + (i - (k - 1) / 2) * 230, 60]);
    spread(rows.bottom, (i, k) => [RX + (i - (k - 1) / 2) * 230, H - 75]);
    spread(rows.left, (i, k) => [110, RY + (i - (k - 1) / 2) * 150]);
    spread(rows.right, (i, k) => [W - 110, RY + (i - (k - 1) / 2) * 150]);
    spread(rows.cache, (i) => [80 + i * 120, 50]);
    return pos;
  }

  function neighborNode(nodes, address) {
    return nodes.find((n) => n.address === address && n.relation !== "router");
  }

  function drawTopology(d) {
    const svg = $("topo");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const nodes = d.nodes;
    const pos = layout(nodes);
    const nbState = {};
    for (const nb of d.status.neighbors) nbState[nb.address] = nb.state;
    const gEdges = el("g"), gAnn = el("g"), gNodes = el("g");
    svg.append(gEdges, gAnn, gNodes);
    for (const n of nodes) {
      if (n.relation === "router" || !pos[n.id]) continue;
      const [x, y] = pos[n.id];
      const cls = n.relation === "cache" ? "edge rtr" : n.relation === "downstream" ? "edge out" : "edge";
      gEdges.append(el("line", { x1: x, y1: y, x2: RX, y2: RY, class: cls }));
      if (n.relation === "cache") {
        gEdges.append(el("text", { x: (x + RX) / 2 + 6, y: (y + RY) / 2 - 4, class: "more" }, "RTR"));
      }
    }
    // announcements on the edge they travel
    for (const n of nodes) {
      if (n.relation === "router" || n.relation === "cache" || !pos[n.id]) continue;
      const e = d.edges[n.address];
      if (!e) continue;
      const [x, y] = pos[n.id];
      if (n.relation === "downstream") {
        const held = (d.observers[String(n.asn)] || e.exported || []).slice(0, 6);
        held.forEach((p, i) => pill(gAnn, x, y, 0.5, i, held.length,
          { prefix: p, cls: "ann held", label: p, data: { "data-prefix": p, "data-held": "true", "data-observer": n.asn } }));
        continue;
      }
      const shown = e.routes.slice(-6);
      shown.forEach((r, i) => {
        const stopped = !r.accepted;
        const cls = "ann st-" + r.state + (r.aspa ? " aspa-" + r.aspa : "") + (stopped ? " stopped" : "");
        const t = stopped ? 0.42 : 0.4;
        const g = pill(gAnn, x, y, t, i, shown.length, {
          prefix: r.prefix, neighbor: n.address, cls: cls, rectCls: "st-" + r.state,
          label: r.prefix + " " + asText(r.origin),
          data: {
            "data-prefix": r.prefix, "data-origin": r.origin === null ? "" : String(r.origin),
            "data-neighbor": n.address, "data-state": r.state, "data-aspa": r.aspa || "",
            "data-accepted": String(r.accepted), "data-stopped": String(stopped),
          },
        });
        if (stopped) {
          // a bar across the edge just before the router: it goes no further
          const dx = RX - x, dy = RY - y, len = Math.hypot(dx, dy) || 1;
          const [sx, sy] = along(x, y, 1 - 46 / len, 0); // just outside the router's circle
          const px = -dy / len * 14, py = dx / len * 14;
          g.append(el("line", { x1: sx - px, y1: sy - py, x2: sx + px, y2: sy + py, class: "stop" }));
          g.append(el("text", { x: sx + px * 1.9 - 5, y: sy + py * 1.9 + 5, class: "stop-x" }, "\u2715"));
        }
      });
      const c = e.counts;
      if (e.received > shown.length) {
        const [mx, my] = along(x, y, 0.25, 0);
        const txt = c ? `+${e.received - shown.length} more (${c.valid} valid, ${c.invalid} invalid, ${c["not-found"]} not-found, ${c.dropped} dropped)`
                      : `+${e.received - shown.length} more routes`;
        gAnn.append(el("text", { x: mx, y: my + 28, class: "more" }, txt));
      }
    }
    for (const n of nodes) {
      if (!pos[n.id]) continue;
      const [x, y] = pos[n.id];
      const st = nbState[n.address] || "";
      const g = el("g", { class: "node " + n.relation + (st ? " state-" + st : ""), "data-id": n.id, "data-relation": n.relation });
      if (n.relation === "cache") {
        g.append(el("rect", { x: x - 55, y: y - 20, width: 110, height: 40, rx: 6 }));
        g.append(el("text", { x: x, y: y - 2, class: "asn" }, "RPKI cache"));
        g.append(el("text", { x: x, y: y + 13, class: "name" }, n.name));
      } else {
        g.append(el("circle", { cx: x, cy: y, r: n.relation === "router" ? 34 : 26 }));
        g.append(el("text", { x: x, y: y + 4, class: "asn" }, n.asn ? "AS" + n.asn : n.name));
        const label = n.relation === "router" ? "router under test" : n.name;
        g.append(el("text", { x: x, y: n.relation === "router" ? y + 50 : y + 42, class: "name" }, label));
        if (n.relation !== "router") g.append(el("text", { x: x, y: y + 56, class: "name" }, "(" + n.relation + ")"));
      }
      gNodes.append(g);
    }
  }

  function along(x, y, t, off) {
    const dx = RX - x, dy = RY - y, len = Math.hypot(dx, dy) || 1;
    return [x + dx * t - dy / len * off, y + dy * t + dx / len * off];
  }

  function pill(parent, x, y, t, i, k, o) {
    const off = (i - (k - 1) / 2) * 22;
    const [px, py] = along(x, y, t, off);
    const wpx = Math.max(90, o.label.length * 6.3 + 10);
    const g = el("g", Object.assign({ class: o.cls }, o.data));
    g.append(el("rect", { x: px - wpx / 2, y: py - 9, width: wpx, height: 18, class: o.rectCls || "" }));
    g.append(el("text", { x: px, y: py + 4 }, o.label));
    if (o.neighbor) g.addEventListener("click", () => showDetail(o.prefix, o.neighbor));
    parent.append(g);
    return g;
  }

  // ---- observers: what got through ----
  function drawObservers(d) {
    const box = $("observers");
    box.replaceChildren();
    const obs = d.nodes.filter((n) => n.relation === "downstream");
    for (const n of obs) {
      const held = d.observers[String(n.asn)] || (d.edges[n.address] || {}).exported || [];
      const div = h("div", { class: "observer", id: "observer-" + n.asn, "data-asn": n.asn });
      div.append(h("h4", {}, `AS${n.asn} ${n.name}: its table`));
      const ul = h("ul");
      if (!held.length) ul.append(h("li", { class: "empty" }, "(empty: nothing got through)"));
      for (const p of held.slice(0, 50)) ul.append(h("li", { "data-prefix": p }, p));
      if (held.length > 50) ul.append(h("li", { class: "empty" }, `and ${held.length - 50} more`));
      div.append(ul);
      box.append(div);
    }
  }

  // ---- lab timeline ----
  function drawLab(d) {
    const lab = d.lab;
    $("lab-panel").classList.toggle("hidden", !lab);
    if (!lab) return;
    $("title").textContent = lab.title;
    $("lesson").textContent = lab.lesson;
    $("presenter").classList.toggle("hidden", !d.presenter);
    $("paused").textContent = lab.done ? "finished" : lab.paused ? "paused: press Next" : "running";
    const ol = $("steps");
    ol.replaceChildren();
    lab.steps.forEach((s, i) => {
      const li = h("li", { class: s.state + (i === lab.current ? " current" : ""), "data-step": i });
      li.append(h("strong", {}, s.title));
      if (s.explain) li.append(h("span", { class: "explain" }, s.explain));
      for (const x of s.expect) li.append(h("span", { class: "expect" }, "expect: " + x));
      for (const f of s.failures) li.append(h("span", { class: "expect" }, "FAILED: " + f));
      ol.append(li);
    });
    $("narration").textContent = lab.narration.join("\n");
  }

  // ---- RPKI panel ----
  function drawRpki(d) {
    const tb = $("sources").tBodies[0];
    tb.replaceChildren();
    for (const s of d.status.rpki) {
      const tr = h("tr", { "data-source": s.name });
      for (const v of [`${s.name} (${s.cache})`, (s.connected ? "" : "disconnected, ") + s.state,
                       s.serial === null ? "-" : String(s.serial), String(s.vrps), String(s.aspas)]) tr.append(h("td", {}, v));
      tb.append(tr);
    }
    const ul = $("changes");
    ul.replaceChildren();
    const now = d.status.time;
    const ch = d.rpki_changes.slice().reverse();
    if (!ch.length) ul.append(h("li", {}, "none yet"));
    for (const c of ch) {
      const bits = [];
      if (c.full) bits.push("full load");
      if (c.vrps_added) bits.push(`+${c.vrps_added} VRP`);
      if (c.vrps_removed) bits.push(`-${c.vrps_removed} VRP`);
      if (c.prefixes.length) bits.push("prefixes " + c.prefixes.join(", "));
      if (c.aspa_customers.length) bits.push("ASPA of AS" + c.aspa_customers.join(", AS"));
      const li = h("li", { class: now - c.time < 15 ? "fresh" : "" },
        `${new Date(c.time * 1000).toLocaleTimeString()} ${c.source} serial ${c.serial}: ${bits.join("; ") || "no change"}`);
      ul.append(li);
    }
    drawChart(d.series);
  }

  function drawChart(series) {
    const svg = $("chart");
    svg.replaceChildren();
    const x0 = 34, x1 = 410, top = [8, 88], bot = [112, 190];
    svg.append(el("line", { x1: x0, y1: top[1], x2: x1, y2: top[1], class: "axis" }));
    svg.append(el("line", { x1: x0, y1: bot[1], x2: x1, y2: bot[1], class: "axis" }));
    if (series.length < 1) { svg.append(el("text", { x: 40, y: 50 }, "waiting for samples…")); return; }
    const t0 = series[0].t, t1 = Math.max(series[series.length - 1].t, t0 + 1);
    const X = (t) => x0 + (t - t0) / (t1 - t0) * (x1 - x0);
    const plot = (keys, band) => {
      let max = 1;
      for (const p of series) for (const k of keys) max = Math.max(max, p[k]);
      svg.append(el("text", { x: 2, y: band[0] + 8 }, String(max)));
      svg.append(el("text", { x: 2, y: band[1] }, "0"));
      for (const k of keys) {
        const pts = series.map((p) => `${X(p.t).toFixed(1)},${(band[1] - p[k] / max * (band[1] - band[0])).toFixed(1)}`);
        if (pts.length === 1) pts.push(`${x1},${pts[0].split(",")[1]}`);
        svg.append(el("polyline", { points: pts.join(" "), class: "p-" + k, "data-series": k }));
      }
    };
    plot(["vrps", "aspas"], top);
    plot(["valid", "invalid", "not-found", "dropped"], bot);
    svg.append(el("text", { x: x1 - 60, y: bot[1] + 10 }, `${Math.round(t1 - t0)} s`));
  }

  // ---- route table ----
  async function fetchRoutes() {
    lastRoutesFetch = Date.now();
    routesDirty = false;
    const q = new URLSearchParams({ state: $("f-state").value, neighbor: $("f-neighbor").value, prefix: $("f-prefix").value, limit: "300" });
    try {
      const r = await fetch("/api/routes?" + q);
      if (!r.ok) return;
      const body = await r.json();
      const tb = $("routes").tBodies[0];
      tb.replaceChildren();
      for (const x of body.routes) {
        const tr = h("tr", { class: x.accepted ? "" : "dropped", "data-prefix": x.prefix, "data-neighbor": x.neighbor, "data-state": x.state, "data-aspa": x.aspa || "" });
        tr.append(h("td", {}, x.prefix), h("td", {}, asText(x.origin)), h("td", {}, x.neighbor));
        const st = h("td", { class: "state" }); st.append(h("span", { class: "st-" + x.state }, x.state));
        const as = h("td", { class: "aspa" }); if (x.aspa) as.append(h("span", { class: "a-" + x.aspa }, x.aspa));
        tr.append(st, as, h("td", { class: "action" }, x.action));
        tr.append(h("td", {}, x.reason + (x.aspa === "invalid" && x.aspa_reason ? "; ASPA invalid: " + x.aspa_reason : "")));
        tr.addEventListener("click", () => showDetail(x.prefix, x.neighbor));
        tb.append(tr);
      }
      $("matched").textContent = `${body.matched} matching` + (body.matched > body.routes.length ? ` (first ${body.routes.length} shown)` : "");
    } catch (e) { routesDirty = true; }
  }

  async function showDetail(prefix, neighbor) {
    selected = [prefix, neighbor];
    const r = await fetch("/api/route?" + new URLSearchParams({ prefix: prefix, neighbor: neighbor }));
    if (!r.ok) return;
    const body = await r.json();
    const box = $("detail");
    box.replaceChildren();
    box.classList.remove("hidden");
    for (const d of body.routes) {
      const x = d.route;
      box.append(h("h3", {}, `${x.prefix} ${asText(x.origin)} from ${x.neighbor}: ${x.state}, ${x.action}`));
      box.append(h("div", {}, "AS path: " + x.path + "   why: " + x.reason));
      const list = (title, vrps, cls) => {
        const p = h("div", { class: cls }, `${title}: ` + (vrps.length ? vrps.map((v) => `${v.prefix}-${v.maxLength} AS${v.asn}`).join(", ") : "none"));
        box.append(p);
      };
      list("covering VRPs that match", d.matched, "vrp-matched");
      list("covering VRPs with another origin", d.wrong_origin, "vrp-wrong");
      list("covering VRPs with a shorter maxLength (too long)", d.too_long, "vrp-long");
      if (x.aspa) {
        const hops = d.aspa_bad_hops.map((p) => `AS${p[0]} \u2192 AS${p[1]} is not customer-to-provider`).join("; ");
        box.append(h("div", { class: x.aspa === "invalid" ? "vrp-wrong" : "" },
          `ASPA ${x.aspa}: ${x.aspa_reason || ""}` + (hops ? ` (failed hop: ${hops})` : "") +
          (d.aspa_unattested.length ? `; no ASPA for AS${d.aspa_unattested.join(", AS")}` : "")));
      }
    }
    if (!body.routes.length) box.append(h("div", {}, `${prefix}: no such route any more`));
  }

  function fillNeighbors(d) {
    const sel = $("f-neighbor");
    const have = new Set([...sel.options].map((o) => o.value));
    for (const n of d.status.neighbors) {
      if (!have.has(n.address)) {
        const o = h("option", { value: n.address }, `${n.address} AS${n.asn} ${n.description}`);
        sel.append(o);
      }
    }
  }

  // render times, read by benchmarks/bench_web.py (bounded)
  const renders = [];
  window.rovRenders = renders;

  function render(d) {
    const t0 = performance.now();
    doc = d;
    const c = d.status.counts;
    if (!d.lab) $("title").textContent = `rov-router AS${d.status.asn} (${d.status.router_id})`;
    $("totals").textContent = `${c.routes} routes: ${c.valid} valid, ${c.invalid} invalid, ${c["not-found"]} not-found, ${c.dropped} dropped; ${d.route_events} route events`;
    drawTopology(d);
    drawObservers(d);
    drawLab(d);
    drawRpki(d);
    fillNeighbors(d);
    if (d.seq !== lastSeqRoutes) { routesDirty = true; lastSeqRoutes = d.seq; }
    if (routesDirty && Date.now() - lastRoutesFetch > 1000) fetchRoutes();
    document.body.setAttribute("data-seq", String(d.seq));
    renders.push({ t: Date.now(), seq: d.seq, server: d.status.time * 1000, routes: c.routes, ms: performance.now() - t0 });
    if (renders.length > 5000) renders.splice(0, 1000);
  }

  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "conn on"; });
    es.addEventListener("error", () => { $("conn").textContent = "reconnecting…"; $("conn").className = "conn off"; });
    es.addEventListener("state", (ev) => render(JSON.parse(ev.data)));
  }

  function post(name) { fetch("/api/lab/" + name, { method: "POST", headers: { "X-Rov-Router": "presenter" } }); }

  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["f-state", "f-neighbor"]) $(id).addEventListener("change", fetchRoutes);
    $("f-prefix").addEventListener("input", fetchRoutes);
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); fetchRoutes(); });
    $("btn-next").addEventListener("click", () => post("next"));
    $("btn-pause").addEventListener("click", () => post("pause"));
    $("btn-play").addEventListener("click", () => post("play"));
    setInterval(() => { if (routesDirty && Date.now() - lastRoutesFetch > 1000) fetchRoutes(); }, 1000);
    connect();
  });
  void selected; void doc;
})();
