// Vigil's page: the overview, one series, and the events, drawn from the JSON API; verdicts on events go back to it.
// Routes live in the address's hash (#/, #/series/<id>, #/events, #/mutes); filters too, so a view
// can be linked. The current view asks the API again every few seconds while the tab is visible.

import { scoreChart, seriesChart, sparkline } from "./chart.js";
import { mutesView } from "./mutes.js";

const POLL_MS = 5000;
const PAGE_SIZE = 50;
const SPARK_POINTS = 60;
const RANGES = [["5m", "5 min"], ["15m", "15 min"], ["1h", "1 hour"], ["all", "All kept"]];
const SINCE = [["", "Any time"], ["3600", "Last hour"], ["86400", "Last day"], ["604800", "Last 7 days"]];
const STATUS_TEXT = { anomalous: "Anomalous", warming_up: "Warming up", ok: "OK" };
const DELIVERY_TEXT = { sent: "sent", queued: "queued", retrying: "retrying", dead: "dead-lettered" };
const VERDICT_TEXT = { not_an_incident: "Not an incident", incident: "Incident" };
const notes = new Map(); // event id -> the note being written, kept across refreshes

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const updated = document.getElementById("updated");

let view = null; // {refresh(current)} of the view on screen
let timer = null;
let latest = 0; // number of the latest refresh: an older answer is dropped

// -- small helpers ------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

// A number of a chart's point as alerts write it (vigil.formatting.number_text): 3 significant
// digits, 4 from 1000 to 9999, an exponent below 0.001 and from 10,000 on. The API writes the
// texts of a series' latest value and band itself (value_text, band_text).
function fmt(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e4) {
    const [mantissa, exponent] = x.toExponential(2).split("e");
    return `${mantissa}e${Number(exponent)}`;
  }
  return x.toFixed(Math.max(0, 2 - Math.floor(Math.log10(a))));
}

function fmtScore(s) {
  if (s === null || s === undefined) return "–";
  if (s >= 1) return "1";
  const digits = Math.min(8, Math.max(3, Math.ceil(-Math.log10(1 - s)) + 1));
  return s.toFixed(digits);
}

function two(n) {
  return String(n).padStart(2, "0");
}

function clock(d) {
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock(d)}`;
}

function labelText(labels) {
  return Object.entries(labels).filter(([k]) => k !== "__name__").map(([k, v]) => `${k}=${v}`).join(" ");
}

// The series as alerts name it (its API item's or event's `name`); documents stored before
// Vigil wrote names fall back to the metric, else the query.
function seriesName(it, labels, query) {
  return it.name ?? (labels.__name__ || query);
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, STATUS_TEXT[status] ?? status);
}

function select(id, options, value) {
  return h("select", { id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

// Fill a select's options (once they change), keeping `wanted` selected.
function setOptions(sel, options, wanted) {
  const same = sel.options.length === options.length && options.every(([v], i) => sel.options[i].value === v);
  if (same) return;
  sel.replaceChildren(...options.map(([v, text]) => h("option", { value: v, selected: v === wanted }, text)));
}

// Replace a container's children, keeping keyboard focus on the element with the same data-key.
function rerender(container, nodes) {
  const active = document.activeElement;
  const key = container.contains(active) ? active?.dataset?.key : undefined;
  container.replaceChildren(...nodes);
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

function pager(state, total, onChange) {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  if (pages === 1 && state.page === 0) return h("div");
  return h("div", { class: "pager" },
    h("button", { type: "button", "data-key": "prev", disabled: state.page <= 0,
      onclick: () => onChange(state.page - 1) }, "Previous page"),
    h("span", {}, `Page ${state.page + 1} of ${pages}`),
    h("button", { type: "button", "data-key": "next", disabled: state.page + 1 >= pages,
      onclick: () => onChange(state.page + 1) }, "Next page"));
}

// A page past the end (the list shrank since): go to the last one; says whether it moved.
function lastPage(state, total) {
  const last = Math.max(0, Math.ceil(total / PAGE_SIZE) - 1);
  if (state.page <= last) return false;
  state.page = last;
  remember(state);
  return true;
}

// -- the API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// GET `path` with `params`; with `send`, another method and a JSON body.
async function api(path, params = {}, send = {}) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v !== "" && v !== null && v !== undefined) url.searchParams.append(k, v);
  }
  const headers = {};
  const token = sessionStorage.getItem("vigil-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const author = localStorage.getItem("vigil-author");
  if (author && send.method) headers["X-Vigil-Author"] = author;
  if (send.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { headers, cache: "no-store", method: send.method ?? "GET",
      body: send.body === undefined ? undefined : JSON.stringify(send.body) });
  } catch {
    throw new ApiError(0, "Cannot reach Vigil: the API did not answer.");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, `Vigil answered ${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response.status === 204 ? null : response.json();
}

// -- routing and refreshing ---------------------------------------------------------------

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "series" && parts[1]) return { name: "series", id: decodeURIComponent(parts[1]), params };
  if (parts[0] === "events") return { name: "events", params };
  if (parts[0] === "mutes") return { name: "mutes", params };
  return { name: "overview", params };
}

// Remember a view's filters in the address, without a new history entry.
function remember(entries) {
  const [path] = location.hash.split("?");
  const params = new URLSearchParams(Object.entries(entries).filter(([, v]) => v !== "" && v !== 0));
  const q = params.toString();
  history.replaceState(null, "", `${path || "#/"}${q ? `?${q}` : ""}`);
}

function showProblem(message) {
  if (!message) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  banner.hidden = false;
  banner.replaceChildren(h("strong", {}, "Problem: "), message,
    ` The page shows the last data it got and tries again every ${POLL_MS / 1000} s.`);
}

function askToken() {
  if (banner.querySelector("form")) return;
  const input = h("input", { type: "password", id: "token", autocomplete: "off" });
  banner.hidden = false;
  banner.replaceChildren(h("form", {
    class: "token",
    onsubmit: (e) => {
      e.preventDefault();
      sessionStorage.setItem("vigil-token", input.value.trim());
      showProblem(null);
      refresh();
    },
  }, h("label", { for: "token" }, "This Vigil needs its API token (server.token):"), input,
  h("button", { type: "submit" }, "Use token")));
  input.focus();
}

async function refresh() {
  clearTimeout(timer);
  const mine = ++latest;
  const current = () => mine === latest;
  try {
    await view.refresh(current);
    if (!current()) return;
    if (!banner.querySelector("form")) showProblem(null);
    updated.textContent = `Updated ${clock(new Date())}`;
  } catch (err) {
    if (!current()) return;
    if (err.status === 401) askToken();
    else showProblem(err.message);
    updated.textContent = `Update failed at ${clock(new Date())}`;
  }
  if (current()) timer = setTimeout(() => { if (!document.hidden) refresh(); }, POLL_MS);
}

function navigate(byUser) {
  const r = route();
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    if (a.dataset.nav === r.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren();
  view = VIEWS[r.name](r);
  document.title = `${view.title} · Vigil`;
  refresh();
  if (byUser) main.querySelector("h1")?.focus();
}

// -- overview -----------------------------------------------------------------------------

function overview(r) {
  const p = r.params;
  const state = { q: p.get("q") ?? "", status: p.get("status") ?? "", query: p.get("query") ?? "", page: Number(p.get("page") ?? 0) };
  const cards = h("div", { class: "cards" });
  const sources = h("div", { class: "sources" });
  const search = h("input", { type: "search", id: "search", value: state.q, autocomplete: "off", "aria-describedby": "search-help" });
  const status = select("status", [["", "Any state"], ["anomalous", "Anomalous"], ["warming_up", "Warming up"], ["ok", "OK"]], state.status);
  const query = select("query", [["", "Any query"]], state.query);
  const count = h("p", { class: "count", id: "series-count" });
  const body = h("tbody");
  const paging = h("div");
  let marked = false;

  const changed = () => {
    state.q = search.value.trim();
    state.status = status.value;
    state.query = query.value;
    state.page = 0;
    remember(state);
    refresh();
  };
  search.addEventListener("input", debounce(changed, 250));
  status.addEventListener("change", changed);
  query.addEventListener("change", changed);

  main.append(
    h("h1", { tabindex: "-1" }, "Overview"),
    h("section", { "aria-label": "Health summary" }, cards, sources),
    h("section", { "aria-labelledby": "series-heading" },
      h("h2", { id: "series-heading" }, "Series"),
      h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
        h("div", { class: "field wide" }, h("label", { for: "search" }, "Search labels"), search,
          h("span", { class: "hint", id: "search-help" }, "Words that must all appear, such as cpu web-1. Press / to jump here.")),
        h("div", { class: "field" }, h("label", { for: "status" }, "State"), status),
        h("div", { class: "field" }, h("label", { for: "query" }, "Query"), query)),
      count,
      h("div", { class: "scroll" },
        h("table", { class: "list", id: "series-table" },
          h("caption", { class: "visually-hidden" }, "Series, anomalous first, then by score"),
          h("thead", {}, h("tr", {},
            ["State", "Series", "Query", "Value", "Expected (band)", "Score", "Recent points", "Last sample"]
              .map((t) => h("th", { scope: "col" }, t)))),
          body)),
      paging),
  );

  function renderSummary(sum) {
    const failing = Object.entries(sum.sources).filter(([, s]) => s.status !== "ok");
    const card = (title, value, href, cls = "") => h("div", { class: `card ${cls}` },
      h("span", { class: "card-title" }, title),
      href ? h("a", { class: "card-value", href, "data-key": `card-${title}` }, value) : h("span", { class: "card-value" }, value));
    const number = (x) => x.toLocaleString("en");
    rerender(cards, [
      card("Series watched", number(sum.series)),
      card("Anomalous now", number(sum.anomalous), "#/?status=anomalous", sum.anomalous ? "alarm" : ""),
      card("Warming up", number(sum.warming_up)),
      card("Events, last hour", number(sum.events_last_hour), "#/events?since=3600"),
      card("Events, last day", number(sum.events_last_day), "#/events?since=86400"),
      card("Sources", failing.length ? `${failing.length} of ${Object.keys(sum.sources).length} not ok` : "all ok", null, failing.length ? "alarm" : ""),
    ]);
    sources.replaceChildren(...failing.map(([name, s]) => h("p", { class: `source-problem ${s.status}`, role: "status" },
      h("strong", {}, { failing: `Source down: ${name}. `, degraded: `Source degraded: ${name}. ` }[s.status] ?? `Waiting for source ${name}. `), s.detail)));
    setOptions(query, [["", "Any query"], ...Object.keys(sum.sources).map((n) => [n, n])], state.query);
    return failing;
  }

  function renderRows(page, failing) {
    const shown = page.items.length;
    const first = page.offset + 1;
    count.textContent = page.total ? `Showing ${first}–${page.offset + shown} of ${page.total.toLocaleString("en")} series` : "";
    if (!page.total) {
      const filtered = state.q || state.status || state.query;
      const text = filtered ? "No series match these filters."
        : "No series yet — waiting for the first samples.";
      const why = !filtered && failing.length ? ` ${failing.map(([n, s]) => `${n}: ${s.detail}`).join("; ")}.` : "";
      rerender(body, [h("tr", {}, h("td", { colspan: 8, class: "empty" }, text, why))]);
    } else {
      rerender(body, page.items.map((it) => {
        const name = seriesName(it, it.labels, it.query);
        const link = h("a", { href: `#/series/${encodeURIComponent(it.id)}`, "data-key": `series-${it.id}` }, name);
        return h("tr", { class: `row-${it.status}`, "data-id": it.id, onclick: (e) => { if (e.target !== link) link.click(); } },
          h("td", {}, badge(it.status)),
          h("th", { scope: "row" }, link, h("div", { class: "labels" }, labelText(it.labels))),
          h("td", {}, it.query),
          h("td", { class: "num" }, it.value_text),
          h("td", { class: "num" }, it.band_text ?? "–"),
          h("td", { class: "num" }, fmtScore(it.score)),
          h("td", {}, it.sparkline ? sparkline(it.sparkline, `last ${it.sparkline.value.length} points of ${name}`) : ""),
          h("td", {}, when(it.last_sample_at)));
      }));
    }
    rerender(paging, [pager(state, page.total, (n) => { state.page = n; remember(state); refresh(); })]);
  }

  return {
    title: "Overview",
    async refresh(current) {
      const [sum, page] = await Promise.all([
        api("api/v1/summary"),
        api("api/v1/series", { search: state.q, status: state.status, query: state.query, limit: PAGE_SIZE,
          offset: state.page * PAGE_SIZE, sparkline: SPARK_POINTS }),
      ]);
      if (!current()) return;
      if (lastPage(state, page.total)) return refresh();
      renderRows(page, renderSummary(sum));
      if (!marked) {
        marked = true; // what benchmarks/page.py measures: navigation to the first page of rows drawn
        requestAnimationFrame(() => performance.mark("vigil:rows"));
      }
    },
  };
}

// -- one series ---------------------------------------------------------------------------

function seriesView(r) {
  let range = r.params.get("range") ?? "15m";
  const title = h("h1", { tabindex: "-1" }, "Series");
  const head = h("div");
  const buttons = h("div", { class: "ranges", role: "group", "aria-label": "Time range" });
  const note = h("p", { class: "hint" });
  const charts = h("div", { class: "charts" });
  const events = h("div");
  const back = h("a", { href: "#/", class: "back" }, "← All series");

  const drawButtons = () => rerender(buttons, RANGES.map(([value, text]) => h("button", {
    type: "button", "aria-pressed": String(value === range), "data-key": `range-${value}`,
    onclick: () => { range = value; remember({ range }); drawButtons(); refresh(); },
  }, text)));
  drawButtons();
  main.append(back, title, head, h("section", { "aria-label": "Charts" }, buttons, note, charts),
    h("section", { "aria-labelledby": "events-heading" }, h("h2", { id: "events-heading" }, "Events of this series"), events));

  return {
    title: "Series",
    async refresh(current) {
      let d;
      try {
        d = await api(`api/v1/series/${encodeURIComponent(r.id)}`, { window: range === "all" ? "" : range });
      } catch (err) {
        if (err.status !== 404) throw err;
        if (!current()) return;
        title.textContent = "Series not found";
        rerender(head, [h("p", { class: "empty" }, "Vigil holds no series with this id: it may have gone silent and been forgotten, or belong to another shard.")]);
        charts.replaceChildren();
        events.replaceChildren();
        return;
      }
      if (!current()) return;
      const s = d.series;
      const name = seriesName(s, s.labels, s.query);
      title.replaceChildren(name, " ", badge(s.status));
      head.replaceChildren(
        h("p", { class: "labels" }, `query ${s.query}`, labelText(s.labels) ? ` · ${labelText(s.labels)}` : ""),
        h("p", {}, s.reason),
        h("dl", { class: "stats" },
          [["Value", s.value_text], ["Expected (band)", s.band_text ?? "–"],
            ["Score", fmtScore(s.score)], ["Last sample", when(s.last_sample_at)]]
            .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
      );
      const n = d.points.t.length;
      note.textContent = `Vigil keeps the last ${d.history_points} points of each series; `
        + (n ? `this view shows ${n} of them, ${when(new Date(d.points.t[0] * 1000).toISOString())} to ${clock(new Date(d.points.t[n - 1] * 1000))}.`
          : "none fall in this range.");
      const last = n ? d.points.t[n - 1] : 0;
      const spans = d.events.map((e) => [Date.parse(e.started_at) / 1000, e.ended_at ? Date.parse(e.ended_at) / 1000 : last]);
      const width = Math.max(charts.clientWidth, 480);
      if (!n) {
        charts.replaceChildren(h("p", { class: "empty" }, "No points in this range yet — waiting for samples."));
      } else {
        const marked = d.anomalous.filter(Boolean).length;
        charts.replaceChildren(
          h("figure", {},
            seriesChart(d.points, d.anomalous, spans, { width, fmt,
              label: `${name}: observed values with the expected band; ${marked} anomalous points marked` }),
            h("figcaption", { class: "legend" },
              h("span", { class: "key observed" }, "observed"), h("span", { class: "key expected" }, "expected"),
              h("span", { class: "key band" }, "expected band"), h("span", { class: "key marker" }, "anomaly"),
              h("span", { class: "key event-span" }, "event"))),
          h("figure", {},
            scoreChart(d.points, d.anomalous, spans, d.threshold, { width, fmtScore,
              label: `${name}: how rare each sample is (1 in N samples, log scale), threshold ${d.threshold}` }),
            h("figcaption", { class: "legend" }, h("span", { class: "key score" }, "rarity: 1 in N samples (log scale)"),
              h("span", { class: "key threshold" }, "threshold"))),
        );
      }
      rerender(events, [d.events.length ? eventTable(d.events, false)
        : h("p", { class: "empty" }, "No anomaly events for this series.")]);
    },
  };
}

// -- events -------------------------------------------------------------------------------

function delivery(e) {
  if (!("delivery" in e)) return h("span", { class: "hint" }, "no receivers configured");
  const rows = Object.entries(e.delivery);
  if (!rows.length) return h("span", { class: "hint" }, "none queued");
  return h("ul", { class: "delivery" }, rows.map(([receiver, states]) => h("li", {}, `${receiver}: `,
    Object.entries(states).map(([state, word]) => h("span", { class: `deliver ${word}` }, `${state} ${DELIVERY_TEXT[word] ?? word}`)))));
}

// Send a verdict (or undo one with `verdict` null), then show the answer or the problem.
async function judge(e, verdict) {
  const url = `api/v1/anomalies/${encodeURIComponent(e.id)}/feedback`;
  try {
    if (verdict) await api(url, {}, { method: "POST", body: { verdict, note: notes.get(e.id)?.trim() || null } });
    else await api(url, {}, { method: "DELETE" });
    notes.delete(e.id);
  } catch (err) {
    if (err.status === 401) askToken();
    else showProblem(err.message);
    return;
  }
  refresh();
}

function feedbackCell(e) {
  const f = e.feedback;
  if (f) {
    return h("div", { class: "verdict" },
      h("span", { class: `badge verdict-${f.verdict}` }, VERDICT_TEXT[f.verdict] ?? f.verdict),
      h("span", { class: "hint" }, ` by ${f.author}, ${when(f.at)}`),
      f.note ? h("p", { class: "note" }, f.note) : null,
      f.teaches ? h("p", { class: "hint" }, f.teaches) : null,
      h("button", { type: "button", "data-key": `undo-${e.id}`, onclick: () => judge(e, null) }, "Undo"));
  }
  const note = h("input", { type: "text", maxlength: 1000, placeholder: "Note (optional)", "aria-label": "Note for the verdict",
    "data-key": `note-${e.id}`, value: notes.get(e.id) ?? "", oninput: (ev) => notes.set(e.id, ev.target.value) });
  return h("div", { class: "verdict" }, note,
    h("button", { type: "button", "data-key": `quiet-${e.id}`, onclick: () => judge(e, "not_an_incident") }, "Not an incident"),
    h("button", { type: "button", "data-key": `real-${e.id}`, onclick: () => judge(e, "incident") }, "Incident"));
}

// Who verdicts are signed as, when the token has no name of its own (server.tokens).
function signedAs() {
  const input = h("input", { type: "text", id: "author", maxlength: 64, autocomplete: "name", "data-key": "author",
    value: localStorage.getItem("vigil-author") ?? "",
    oninput: (ev) => localStorage.setItem("vigil-author", ev.target.value.trim()) });
  return h("p", { class: "signed hint" }, h("label", { for: "author" }, "Verdicts are signed as "), input,
    " (a named token signs them with its own name)");
}

function eventTable(items, withSeries) {
  const cols = ["State", ...(withSeries ? ["Series"] : []), "Started", "Ended", "Peak score", "Summary", "Notifications", "Verdict"];
  return h("div", { class: "scroll" }, signedAs(), h("table", { class: "list events" },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((e) => h("tr", { "data-id": e.id },
      h("td", {}, h("span", { class: `badge ${e.state}` }, e.state === "firing" ? "Firing" : "Resolved"),
        e.muted ? h("span", { class: "badge muted", title: `notifies nobody: ${e.muted}` }, "Muted") : null),
      withSeries ? h("th", { scope: "row" },
        h("a", { href: `#/series/${encodeURIComponent(e.series_id)}`, "data-key": `event-${e.id}` }, seriesName(e, e.series, e.query)),
        h("div", { class: "labels" }, `${e.query} ${labelText(e.series)}`)) : null,
      h("td", {}, when(e.started_at)),
      h("td", {}, e.ended_at ? when(e.ended_at) : "open"),
      h("td", { class: "num" }, fmtScore(e.peak_score)),
      h("td", {}, e.summary),
      h("td", {}, delivery(e)),
      h("td", {}, feedbackCell(e)))))));
}

function eventsView(r) {
  const p = r.params;
  const state = { q: p.get("q") ?? "", state: p.get("state") ?? "", query: p.get("query") ?? "", since: p.get("since") ?? "", page: Number(p.get("page") ?? 0) };
  const search = h("input", { type: "search", id: "search", value: state.q, autocomplete: "off" });
  const stateSel = select("state", [["", "Firing and resolved"], ["firing", "Firing"], ["resolved", "Resolved"]], state.state);
  const query = select("query", [["", "Any query"]], state.query);
  const since = select("since", SINCE, state.since);
  const count = h("p", { class: "count", id: "events-count" });
  const list = h("div");
  const paging = h("div");
  const changed = () => {
    Object.assign(state, { q: search.value.trim(), state: stateSel.value, query: query.value, since: since.value, page: 0 });
    remember(state);
    refresh();
  };
  search.addEventListener("input", debounce(changed, 250));
  for (const sel of [stateSel, query, since]) sel.addEventListener("change", changed);
  main.append(
    h("h1", { tabindex: "-1" }, "Events"),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field wide" }, h("label", { for: "search" }, "Search"), search),
      h("div", { class: "field" }, h("label", { for: "state" }, "State"), stateSel),
      h("div", { class: "field" }, h("label", { for: "query" }, "Query"), query),
      h("div", { class: "field" }, h("label", { for: "since" }, "When"), since)),
    count, list, paging);

  return {
    title: "Events",
    async refresh(current) {
      const start = state.since ? String(Date.now() / 1000 - Number(state.since)) : "";
      const [sum, page] = await Promise.all([
        api("api/v1/summary"),
        api("api/v1/anomalies", { search: state.q, state: state.state, query: state.query, start, limit: PAGE_SIZE, offset: state.page * PAGE_SIZE }),
      ]);
      if (!current()) return;
      if (lastPage(state, page.total)) return refresh();
      setOptions(query, [["", "Any query"], ...Object.keys(sum.sources).map((n) => [n, n])], state.query);
      count.textContent = page.total ? `Showing ${page.offset + 1}–${page.offset + page.items.length} of ${page.total} events, newest first` : "";
      const filtered = state.q || state.state || state.query || state.since;
      rerender(list, [page.total ? eventTable(page.items, true)
        : h("p", { class: "empty" }, filtered ? "No events match these filters." : "No anomaly events yet.")]);
      rerender(paging, [pager(state, page.total, (n) => { state.page = n; remember(state); refresh(); })]);
    },
  };
}

function mutes() {
  const v = mutesView({ h, api, when, select, rerender });
  v.mount(main);
  return { title: v.title, refresh: (current) => v.refresh(current, refresh) };
}

const VIEWS = { overview, series: seriesView, events: eventsView, mutes };

// "/" jumps to the search box, unless one is typing already.
document.addEventListener("keydown", (e) => {
  const typing = e.target.closest?.("input, select, textarea");
  if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
    const box = document.getElementById("search");
    if (box) {
      e.preventDefault();
      box.focus();
    }
  }
});
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
window.addEventListener("hashchange", () => navigate(true));
navigate(false);
