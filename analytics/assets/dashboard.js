// tidemark analytics dashboard: polls the JSON endpoints and draws plain SVG and canvas charts.
// No build step, no dependency. Every chart reads one endpoint (see the footer of the page).
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
let selected = null;

const fmt = {
  bytes(n) { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return `${n.toFixed(n < 10 && i ? 1 : 0)} ${u[i]}`; },
  rate(n) { return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB/s`; },
  pct(x) { return `${Math.round(x * 100)}%`; },
  time(ms) { return new Date(ms).toISOString().slice(11, 19); },
  when(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC"; },
};

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function el(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(svg) {
  svg.replaceChildren();
  const box = svg.getBoundingClientRect();
  const w = Math.max(200, box.width), h = Math.max(80, box.height);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  return { w, h, pad: { l: 64, r: 56, t: 8, b: 20 } };
}

function timeAxis(svg, f, x0, x1, sx) {
  const y = f.h - f.pad.b;
  svg.append(el("svg:line", { x1: f.pad.l, x2: f.w - f.pad.r, y1: y, y2: y, class: "axis" }));
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = x0 + ((x1 - x0) * i) / ticks;
    svg.append(el("svg:text", { x: sx(t), y: f.h - 5, class: "tick", "text-anchor": "middle" }, fmt.time(t)));
  }
}

function lineChart(svg, series, x0, x1) {
  const f = frame(svg);
  if (x1 <= x0) x1 = x0 + 1000;
  const sx = (t) => f.pad.l + ((t - x0) / (x1 - x0)) * (f.w - f.pad.l - f.pad.r);
  timeAxis(svg, f, x0, x1, sx);
  for (const s of series) {
    const max = s.max ?? Math.max(1e-9, ...s.points.map((p) => p[1]));
    const sy = (v) => f.h - f.pad.b - (v / max) * (f.h - f.pad.t - f.pad.b);
    const x = s.side === "right" ? f.w - f.pad.r + 4 : f.pad.l - 4;
    svg.append(el("svg:text", { x, y: f.pad.t + 9, class: "tick", "text-anchor": s.side === "right" ? "start" : "end" }, s.label(max)));
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    if (s.area) {
      const base = f.h - f.pad.b;
      svg.append(el("svg:path", { d: `${d}L${sx(s.points.at(-1)[0])},${base}L${sx(s.points[0][0])},${base}Z`, fill: s.color, opacity: 0.18 }));
    }
    svg.append(el("svg:path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dash || "" }));
  }
  return { f, sx };
}

function drawThroughput(windows) {
  const pts = windows.map((w) => [w.start_ms, w.bytes_per_second]);
  const iops = windows.map((w) => [w.start_ms, w.iops]);
  const [x0, x1] = span(windows);
  lineChart(document.getElementById("chart-throughput"), [
    { points: pts, color: css("--c1"), area: true, label: (m) => fmt.rate(m) },
    { points: iops, color: css("--c2"), side: "right", label: (m) => `${m.toFixed(0)} IOPS` },
  ], x0, x1);
}

function drawEntropy(windows, baseline, suspects) {
  const svg = document.getElementById("chart-entropy");
  const judged = windows.filter((w) => w.samples > 0);
  const [x0, x1] = span(windows);
  const { f, sx } = lineChart(svg, [
    { points: judged.map((w) => [w.start_ms, w.high_fraction]), color: css("--c3"), area: true, max: 1, label: () => "100%" },
    { points: windows.length ? [[x0, baseline], [x1, baseline]] : [], color: css("--c4"), dash: "5 4", max: 1, side: "right", label: () => `baseline ${fmt.pct(baseline)}` },
  ], x0, x1);
  shade(svg, f, sx, suspects, x0, x1);
}

function shade(svg, f, sx, suspects, x0, x1) {
  for (const s of suspects) {
    const a = Math.max(x0, s.window_start), b = Math.min(x1, s.window_end);
    if (b <= a) continue;
    svg.prepend(el("svg:rect", { x: sx(a), y: f.pad.t, width: Math.max(3, sx(b) - sx(a)), height: f.h - f.pad.t - f.pad.b, fill: css("--c7"), opacity: 0.35 }));
  }
}

function drawPoints(data, windows) {
  const svg = document.getElementById("chart-points");
  const points = data.points;
  const times = points.map((p) => p.created_at).concat(windows.map((w) => w.start_ms), windows.map((w) => w.end_ms));
  const x0 = Math.min(...times), x1 = Math.max(...times);
  const f = frame(svg);
  if (!points.length) { svg.append(el("svg:text", { x: f.w / 2, y: f.h / 2, class: "tick", "text-anchor": "middle" }, "no recovery point yet")); return; }
  const sx = (t) => f.pad.l + ((t - x0) / Math.max(1, x1 - x0)) * (f.w - f.pad.l - f.pad.r);
  timeAxis(svg, f, x0, x1, sx);
  shade(svg, f, sx, data.clean_points, x0, x1);
  const y = (f.h - f.pad.b) / 2 + 4;
  svg.append(el("svg:line", { x1: f.pad.l, x2: f.w - f.pad.r, y1: y, y2: y, stroke: css("--line"), "stroke-width": 2 }));
  const clean = new Set(data.clean_points.map((c) => c.rp_id));
  for (const p of points) {
    const x = sx(p.created_at);
    const dot = el("svg:circle", { cx: x, cy: y, r: 5, fill: css("--c5") });
    dot.append(el("svg:title", {}, `recovery point ${p.rp_id} ${p.label ? "(" + p.label + ") " : ""}seq ${p.seq}, ${fmt.when(p.created_at)}`));
    svg.append(dot);
    if (clean.has(p.rp_id)) {
      svg.append(el("svg:circle", { cx: x, cy: y, r: 10, fill: "none", stroke: css("--c6"), "stroke-width": 3, class: "clean-point" }));
      svg.append(el("svg:text", { x, y: y - 16, fill: css("--c6"), "font-size": 11, "text-anchor": "middle" }, `clean point: rp ${p.rp_id}${p.label ? " (" + p.label + ")" : ""}`));
    }
  }
}

function drawHeatmap(data) {
  const canvas = document.getElementById("chart-heatmap");
  const rows = data.rows.slice(-60);
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = css("--bg"); ctx.fillRect(0, 0, width, height);
  if (!rows.length) return;
  const max = Math.max(1, ...rows.flatMap((r) => r[1]));
  const cw = width / data.buckets, rh = height / Math.max(rows.length, 12);
  rows.forEach(([, heat], r) => heat.forEach((n, c) => {
    if (!n) return;
    const v = Math.sqrt(n / max);
    ctx.fillStyle = `hsl(${200 - 190 * v}, 85%, ${22 + 40 * v}%)`;
    ctx.fillRect(c * cw, r * rh, Math.ceil(cw), Math.ceil(rh));
  }));
  ctx.fillStyle = css("--muted"); ctx.font = "10px system-ui";
  ctx.fillText("0", 3, height - 4);
  const end = fmt.bytes(data.size || 0); ctx.fillText(end, width - ctx.measureText(end).width - 3, height - 4);
}

function drawSizes(window) {
  const svg = document.getElementById("chart-sizes");
  const f = frame(svg);
  const sizes = Object.entries(window ? window.sizes : {}).map(([k, v]) => [Number(k), v]).sort((a, b) => a[0] - b[0]);
  if (!sizes.length) return;
  const max = Math.max(...sizes.map((s) => s[1]));
  const bw = (f.w - f.pad.l - 10) / sizes.length;
  sizes.forEach(([size, n], i) => {
    const h = (n / max) * (f.h - f.pad.t - f.pad.b - 12);
    const x = f.pad.l + i * bw;
    svg.append(el("svg:rect", { x: x + 4, y: f.h - f.pad.b - h, width: bw - 8, height: h, rx: 3, fill: css("--c2") }));
    svg.append(el("svg:text", { x: x + bw / 2, y: f.h - f.pad.b - h - 3, class: "tick", "text-anchor": "middle" }, String(n)));
    svg.append(el("svg:text", { x: x + bw / 2, y: f.h - 5, class: "tick", "text-anchor": "middle" }, `≤${fmt.bytes(size)}`));
  });
}

function drawHot(window) {
  const table = document.getElementById("hot");
  table.replaceChildren(row(["region", "writes"], "th"));
  for (const [offset, n] of window ? window.hot_regions : []) table.append(row([`${fmt.bytes(offset)} – ${fmt.bytes(offset + 1048576)}`, n]));
}

function row(cells, tag = "td") {
  const tr = el("tr");
  for (const c of cells) { const td = el(tag); if (c instanceof Node) td.append(c); else td.textContent = c; tr.append(td); }
  return tr;
}

function span(windows) {
  if (!windows.length) return [Date.now() - 60000, Date.now()];
  return [windows[0].start_ms, windows.at(-1).end_ms];
}

function badge(text, kind = "") { return el("span", { class: `badge ${kind}` }, text); }

function drawVolumes(volumes) {
  const box = document.getElementById("volumes");
  if (!volumes.length) return;
  if (!selected || !volumes.some((v) => v.volume === selected)) selected = volumes[0].volume;
  box.replaceChildren(...volumes.map((v) => {
    const w = v.last_window || {};
    const card = el("div", { class: `card${v.volume === selected ? " selected" : ""}${v.alerts.length ? " alert" : ""}`, "data-volume": v.volume });
    const title = el("h3", {}, v.volume);
    title.append(v.alerts.length ? badge("encryption suspected", "bad") : badge("normal"));
    const dl = el("dl");
    for (const [k, val] of [["size", fmt.bytes(v.size)], ["writes", v.writes.toLocaleString()], ["throughput", fmt.rate(w.bytes_per_second || 0)],
      ["IOPS", (w.iops || 0).toFixed(1)], ["overwrite ratio", fmt.pct(w.overwrite_ratio || 0)], ["high entropy", `${fmt.pct(w.high_fraction || 0)} (baseline ${fmt.pct(v.baseline)})`]]) {
      dl.append(el("dt", {}, k), el("dd", {}, val));
    }
    card.append(title, dl);
    card.onclick = () => { selected = v.volume; refresh(); };
    return card;
  }));
}

function sparkline(history) {
  const svg = el("svg:svg", { width: 160, height: 28, viewBox: "0 0 160 28", class: "spark" });
  if (history.length > 1) {
    const x0 = history[0][0], x1 = history.at(-1)[0], max = Math.max(1, ...history.map((h) => h[1]));
    const d = history.map((h, i) => `${i ? "L" : "M"}${((h[0] - x0) / Math.max(1, x1 - x0)) * 158 + 1},${26 - (h[1] / max) * 24}`).join("");
    svg.append(el("svg:path", { d, fill: "none", stroke: css("--c1"), "stroke-width": 1.5 }));
  }
  return svg;
}

function drawSites(mirrors) {
  const table = document.getElementById("sites");
  if (!mirrors.length) return;
  const kinds = { REPLICATING: "", SEEDING: "warn", PAUSED: "warn", RESYNC_NEEDED: "bad", ERROR: "bad", FAILED_OVER: "warn" };
  table.replaceChildren(row(["site", "volume", "state", "held point", "RPO lag", "lag over time"], "th"),
    ...mirrors.map((m) => row([m.site, m.volume, badge(m.state, kinds[m.state] ?? "warn"), m.rp_id ?? "–", `${m.lag_seconds.toFixed(1)} s`, sparkline(m.history)])));
}

function drawAlerts(alerts) {
  const table = document.getElementById("alerts");
  const banner = document.getElementById("banner");
  if (alerts.length) {
    table.replaceChildren(row(["time", "alert", "", "subject", "what to do"], "th"),
      ...alerts.map((a) => row([fmt.when(a.timestamp), a.kind, badge(a.state.toLowerCase(), a.state === "RAISED" ? "bad" : ""), [a.site, a.volume].filter(Boolean).join(" / "), a.message])));
  }
  const newest = new Map(); for (const a of [...alerts].reverse()) newest.set(a.alert_id, a);
  const active = [...newest.values()].filter((a) => a.state === "RAISED");
  banner.hidden = !active.length;
  banner.replaceChildren(...active.map((a) => { const p = el("div"); p.append(el("b", {}, a.kind + " "), a.message); return p; }));
}

async function refresh() {
  try {
    const [overview, mirrors] = await Promise.all([getJSON("/api/overview"), getJSON("/api/mirrors")]);
    document.getElementById("clock").textContent = overview.clock_ms ? `journal time ${fmt.when(overview.clock_ms)}` : "waiting for the journal…";
    drawVolumes(overview.volumes);
    drawSites(mirrors);
    drawAlerts(overview.alerts);
    if (!selected) return;
    const v = overview.volumes.find((x) => x.volume === selected);
    const base = `/api/volumes/${encodeURIComponent(selected)}`;
    const [windows, points, heat] = await Promise.all([getJSON(`${base}/windows`), getJSON(`${base}/points`), getJSON(`${base}/heatmap`)]);
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-title").textContent = `Volume ${selected}`;
    drawThroughput(windows.windows);
    drawEntropy(windows.windows, v ? v.baseline : 0, points.clean_points);
    drawPoints(points, windows.windows);
    drawHeatmap(heat);
    drawSizes(windows.windows.at(-1));
    drawHot(windows.windows.at(-1));
    document.body.dataset.drawn = "yes";
  } catch (error) {
    document.getElementById("clock").textContent = `cannot reach the analytics app: ${error.message}`;
  }
}

refresh();
setInterval(refresh, POLL_MS);
