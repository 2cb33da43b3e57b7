"""The live view (`GET /_cdp/ui`, and `/` for a browser): one self-contained page, no CDN and no
build step (the machine may be offline).

The server renders its first screen into the HTML (`render`: the newest calls and rejects, newest
first, and the counts), so a page that runs no script at all (`chromium --headless --dump-dom`,
a screenshot, a curl) shows what arrived. The script then keeps it live from the event stream
(`/_cdp/events`, opened after the page has loaded), pauses and resumes, pages back through
everything stored (`/_cdp/calls?tail=…&before=…`: paging and filtering happen on the server, so
100,000 stored calls cost the page nothing), shows a selected call's JSON and "copy as curl"
(the key left as $CDP_API_KEY, never shown). An event it cannot read is skipped, never fatal.
"""

from __future__ import annotations

import html
import json
from typing import Any

ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    b'fill="#2d6cdf"/><path d="M4 8h8M8 4v8" stroke="#fff" stroke-width="2"/></svg>'
)
TYPES = ("identify", "track", "page", "screen", "group", "alias")


def summary_of(call: dict[str, Any]) -> str:
    """What a row says of a call: the event, the page, the person's email and first traits, the group."""
    kind = call.get("type")
    traits: dict[str, Any] = call["traits"] if isinstance(call.get("traits"), dict) else {}
    if kind == "identify":
        first = [f"{key}={_short(value)}" for key, value in traits.items() if key != "email"][:3]
        return " · ".join(part for part in (_text(traits.get("email")), ", ".join(first)) if part)
    if kind == "group":
        name = _text(traits.get("name"))
        return _text(call.get("groupId")) + (f" ({name})" if name else "")
    if kind == "alias":
        return f"{_text(call.get('previousId'))} → {_text(call.get('userId'))}"
    if kind in ("page", "screen"):
        category = _text(call.get("category"))
        return _text(call.get("name")) + (f" ({category})" if category else "")
    return _text(call.get("event"))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _row(item: dict[str, Any]) -> str:
    """One row of the table, as the script makes them (newest first)."""
    when = html.escape(_text(item.get("receivedAt")))
    time_cell = f'<td class="when" title="{when}" data-at="{when}">{when[11:19]}</td>'
    if "_seq" not in item:  # a reject
        cells = [str(item.get("status")), _text(item.get("path")), "; ".join(map(str, item.get("errors") or []))]
        body = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
        return f'<tr class="reject" data-rseq="{int(item["seq"])}"><td>✗</td>{time_cell}{body}</tr>'
    kind = _text(item.get("type"))
    user = _text(item.get("userId") or item.get("anonymousId"))
    cells = [f'<span class="t t-{html.escape(kind)}">{html.escape(kind)}</span>', html.escape(summary_of(item))]
    cells.append(html.escape(user))
    body = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr class="call" data-seq="{int(item["_seq"])}"><td>{int(item["_seq"])}</td>{time_cell}{body}</tr>'


def _counts(summary: dict[str, Any]) -> str:
    by_type = summary.get("by_type", {})
    chips = [f'<span class="t t-{kind}">{kind} <b>{int(by_type.get(kind, 0)):,}</b></span>' for kind in TYPES]
    chips.append(f'<span class="t t-reject">rejected <b>{int(summary.get("rejected", 0)):,}</b></span>')
    return " ".join(chips)


def newest_first(item: dict[str, Any]) -> float:
    """A sort key (reversed) for calls and rejects together, in the order they came: a call's
    sequence number, a reject's just after the call before it (times tie within a millisecond)."""
    return float(item["_seq"]) if "_seq" in item else item.get("afterCall", 0) + 0.5


def render(
    calls: list[dict[str, Any]], rejects: list[dict[str, Any]], summary: dict[str, Any], limit: int = 100
) -> str:
    """The page with its first screen in it: the newest `limit` calls and rejects, newest first."""
    shown = sorted([*calls, *rejects], key=newest_first, reverse=True)[:limit]
    # where "older" goes on from: before the oldest shown, or (none shown) before the newest
    shown_calls = [item["_seq"] for item in shown if "_seq" in item]
    shown_rejects = [item["seq"] for item in shown if "_seq" not in item]
    state = {
        "oldestCall": min(shown_calls) if shown_calls else (calls[-1]["_seq"] + 1 if calls else None),
        "oldestReject": min(shown_rejects) if shown_rejects else (rejects[-1]["seq"] + 1 if rejects else None),
        "accepted": summary.get("accepted", 0),
        "rejected": summary.get("rejected", 0),
        "byType": summary.get("by_type", {}),
        "items": shown,
    }
    status = f"{summary.get('accepted', 0)} accepted, {summary.get('rejected', 0)} rejected"
    # in a <script> element only "</" could end it early: escaped, the JSON reads the same
    initial = json.dumps(state, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        PAGE.replace("{{ROWS}}", "\n".join(_row(item) for item in shown))
        .replace("{{COUNTS}}", _counts(summary))
        .replace("{{STATUS}}", html.escape(status))
        .replace("{{INITIAL}}", initial)
    )


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cdp serve — live view</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/svg+xml" href="/favicon.ico">
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#222;display:flex;flex-direction:column;height:100vh}
header{padding:8px 12px;background:#f4f4f4;border-bottom:1px solid #ddd;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
header b.title{margin-right:8px}
#counts{padding:4px 12px;border-bottom:1px solid #ddd;display:flex;gap:10px;flex-wrap:wrap}
input,select,button{font:inherit;padding:2px 6px}
main{display:flex;flex:1;min-height:0}
#list{flex:3;overflow:auto;border-right:1px solid #ddd}
#detail{flex:2;overflow:auto;padding:8px 12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:320px}
th{position:sticky;top:0;background:#fff}
tr.call{cursor:pointer}
tr.call:hover,tr.sel{background:#eef4ff}
tr.reject{background:#fde8e8;color:#a40000;cursor:pointer}
tr.fresh{animation:fresh 1.5s}
@keyframes fresh{from{background:#fff7c2}}
.t{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:12px}
.t-identify{background:#2d6cdf}.t-track{background:#1a7f37}.t-page{background:#8250df}
.t-screen{background:#bf3989}.t-group{background:#b35900}.t-alias{background:#57606a}.t-reject{background:#a40000}
pre{white-space:pre-wrap;word-break:break-all;background:#fafafa;border:1px solid #eee;padding:8px}
#status{margin-left:auto;color:#666}
#more{margin:8px 12px}
</style></head>
<body>
<header><b class="title">cdp serve</b>
<select id="type"><option value="">any type</option><option>identify</option><option>track</option><option>page</option><option>screen</option><option>group</option><option>alias</option></select>
<input id="event" placeholder="event">
<input id="user" placeholder="userId or anonymousId">
<label><input type="checkbox" id="showRejects" checked> rejects</label>
<button id="pause">pause</button>
<button id="clear" title="POST /_cdp/reset: forget every call and reject">clear</button>
<span id="status">{{STATUS}}</span>
</header>
<div id="counts">{{COUNTS}}</div>
<main>
<div id="list"><table><thead><tr><th>#</th><th>received</th><th>type</th><th>what</th><th>user</th></tr></thead><tbody id="rows">
{{ROWS}}
</tbody></table><button id="more">older</button></div>
<div id="detail"><p>Select a call to see its JSON.</p></div>
</main>
<script type="application/json" id="initial">{{INITIAL}}</script>
<script>
"use strict";
const MAX_ROWS = 2000, PAGE = 100, TYPES = ["identify", "track", "page", "screen", "group", "alias"];
const $ = id => document.getElementById(id);
const rows = $("rows"), detail = $("detail"), statusLine = $("status");
const filter = {type: "", event: "", user: ""};
const state = JSON.parse($("initial").textContent);
const byRow = new WeakMap();
let paused = false, held = [], live = false;

function filtering() { return Boolean(filter.type || filter.event || filter.user); }
function matches(call) {
  if (filter.type && call.type !== filter.type) return false;
  if (filter.event && call.event !== filter.event) return false;
  if (filter.user && call.userId !== filter.user && call.anonymousId !== filter.user) return false;
  return true;
}
function text(v) { return v == null ? "" : String(v); }
function short(v) { const t = typeof v === "string" ? v : JSON.stringify(v); return t.length <= 40 ? t : t.slice(0, 39) + "…"; }
function summaryOf(c) {
  const traits = c.traits && typeof c.traits === "object" ? c.traits : {};
  if (c.type === "identify") {
    const first = Object.keys(traits).filter(k => k !== "email").slice(0, 3).map(k => k + "=" + short(traits[k]));
    return [text(traits.email), first.join(", ")].filter(Boolean).join(" · ");
  }
  if (c.type === "group") return text(c.groupId) + (traits.name ? " (" + traits.name + ")" : "");
  if (c.type === "alias") return text(c.previousId) + " → " + text(c.userId);
  if (c.type === "page" || c.type === "screen") return text(c.name) + (c.category ? " (" + c.category + ")" : "");
  return text(c.event);
}
function cell(tr, content, title) { const td = document.createElement("td"); if (content instanceof Node) td.appendChild(content); else td.textContent = text(content); td.title = title || td.textContent; tr.appendChild(td); return td; }
function chip(kind, label) { const s = document.createElement("span"); s.className = "t t-" + kind; s.textContent = label; return s; }
function when(tr, at) { const td = cell(tr, ""); td.className = "when"; td.dataset.at = text(at); td.title = text(at); }
function rowFor(item) {
  const tr = document.createElement("tr");
  if (item._seq === undefined) {
    tr.className = "reject"; tr.dataset.rseq = item.seq;
    cell(tr, "✗"); when(tr, item.receivedAt); cell(tr, item.status); cell(tr, item.path); cell(tr, (item.errors || []).join("; "));
  } else {
    tr.className = "call"; tr.dataset.seq = item._seq;
    cell(tr, item._seq); when(tr, item.receivedAt); cell(tr, chip(item.type, text(item.type)), text(item.type));
    cell(tr, summaryOf(item)); cell(tr, item.userId || item.anonymousId || "");
  }
  byRow.set(tr, item);
  return tr;
}
function ago(at) {
  const s = Math.round((Date.now() - Date.parse(at)) / 1000);
  if (!(s >= 0)) return at ? at.slice(11, 19) : "";
  if (s < 60) return s + "s ago"; if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago"; return at.slice(0, 10);
}
function tick() { for (const td of rows.querySelectorAll("td.when")) td.textContent = ago(td.dataset.at); }
function showCounts() {
  statusLine.textContent = state.accepted + " accepted, " + state.rejected + " rejected · " + (paused ? "paused (" + held.length + " new)" : live ? "live" : "connecting…");
  const counts = $("counts"); counts.innerHTML = "";
  for (const t of TYPES) { const c = chip(t, t + " "); const b = document.createElement("b"); b.textContent = (state.byType[t] || 0).toLocaleString("en"); c.appendChild(b); counts.appendChild(c); }
  const r = chip("reject", "rejected "); const b = document.createElement("b"); b.textContent = state.rejected.toLocaleString("en"); r.appendChild(b); counts.appendChild(r);
}
function trim() { while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild); }
function addNewest(item) {
  if (item._seq === undefined ? (filtering() || !$("showRejects").checked) : !matches(item)) return;
  const tr = rowFor(item); tr.classList.add("fresh"); rows.insertBefore(tr, rows.firstChild);
  tr.querySelector("td.when").textContent = ago(item.receivedAt); trim();
}
function arrived(item) {
  if (item._seq === undefined) state.rejected++; else { state.accepted++; state.byType[item.type] = (state.byType[item.type] || 0) + 1; }
  if (paused) held.push(item); else addNewest(item);
  showCounts();
}
function curlFor(call) {
  const body = Object.assign({}, call); delete body._seq; delete body.receivedAt; delete body._warnings;
  const data = JSON.stringify(body).replace(/'/g, "'\\''");
  return "curl -X POST " + location.origin + "/v1/" + call.type + " -u \"$CDP_API_KEY:\" -H 'Content-Type: application/json' -H 'X-Strict-Mode: 1' -d '" + data + "'";
}
function show(tr) {
  const item = byRow.get(tr); if (!item) return;
  const reject = item._seq === undefined;
  for (const s of rows.querySelectorAll(".sel")) s.classList.remove("sel");
  tr.classList.add("sel"); detail.innerHTML = "";
  const h = document.createElement("h3");
  h.textContent = reject ? "Rejected: " + item.status + " " + item.path : "Call #" + item._seq;
  detail.appendChild(h);
  if (reject) { const ul = document.createElement("ul"); ul.className = "errors"; for (const e of item.errors || []) { const li = document.createElement("li"); li.textContent = e; ul.appendChild(li); } detail.appendChild(ul); }
  else {
    const b = document.createElement("button"); b.textContent = "copy as curl"; b.id = "copyCurl";
    const curl = curlFor(item);
    b.onclick = () => { (navigator.clipboard ? navigator.clipboard.writeText(curl) : Promise.reject()).then(() => b.textContent = "copied", () => { const p = document.createElement("pre"); p.textContent = curl; detail.appendChild(p); }); };
    detail.appendChild(b);
  }
  const pre = document.createElement("pre"); pre.id = "json";
  pre.textContent = JSON.stringify(reject ? item.body : item, null, 2);
  detail.appendChild(pre);
}
async function getJSON(url) { const r = await fetch(url, {headers: {"Accept": "application/json"}}); return r.json(); }
async function older(reset) {
  const q = new URLSearchParams({tail: PAGE});
  for (const k of ["type", "event", "user"]) if (filter[k]) q.set(k, filter[k]);
  if (!reset && state.oldestCall) q.set("before", state.oldestCall);
  const calls = (reset || state.oldestCall !== null) ? (await getJSON("/_cdp/calls?" + q)).calls : [];
  let rejects = [];
  if (!filtering() && $("showRejects").checked && (reset || state.oldestReject !== null)) {
    const r = new URLSearchParams({tail: PAGE}); if (!reset && state.oldestReject) r.set("before", state.oldestReject);
    rejects = (await getJSON("/_cdp/rejects?" + r)).rejects;
  }
  if (reset) rows.innerHTML = "";
  state.oldestCall = calls.length === PAGE ? calls[0]._seq : null;  // fewer came: nothing older
  state.oldestReject = rejects.length === PAGE ? rejects[0].seq : null;
  const key = i => i._seq === undefined ? (i.afterCall || 0) + 0.5 : i._seq;  // the order they came
  const items = calls.concat(rejects).sort((a, b) => key(b) - key(a));
  for (const item of items) rows.appendChild(rowFor(item));
  $("more").disabled = state.oldestCall === null && state.oldestReject === null;
  tick();
}
function adopt() { for (const tr of rows.children) { const item = state.items.find(i => tr.className === "call" ? i._seq === Number(tr.dataset.seq) : i._seq === undefined && i.seq === Number(tr.dataset.rseq)); if (item) byRow.set(tr, item); } }
function listen() {
  const events = new EventSource("/_cdp/events");
  const read = handler => e => { let data; try { data = JSON.parse(e.data); } catch (err) { return; } handler(data); };
  events.addEventListener("call", read(arrived));
  events.addEventListener("reject", read(arrived));
  events.addEventListener("reset", () => { state.accepted = state.rejected = 0; state.byType = {}; held = []; rows.innerHTML = ""; state.oldestCall = state.oldestReject = null; showCounts(); });
  events.addEventListener("dropped", () => { older(true); });
  events.onerror = () => { live = false; statusLine.textContent = "disconnected; retrying…"; };
  events.onopen = () => { live = true; showCounts(); document.body.dataset.ready = "1"; };
}
rows.addEventListener("click", e => { const tr = e.target.closest("tr"); if (tr) show(tr); });
$("pause").onclick = () => { paused = !paused; $("pause").textContent = paused ? "resume" : "pause"; if (!paused) { for (const item of held) addNewest(item); held = []; } showCounts(); };
$("clear").onclick = () => fetch("/_cdp/reset", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
$("more").onclick = () => older(false);
for (const id of ["type", "event", "user"]) $(id).addEventListener("change", e => { filter[id] = e.target.value.trim(); older(true); });
$("showRejects").addEventListener("change", () => older(true));
adopt(); tick(); showCounts(); setInterval(tick, 10000);
if (document.readyState === "complete") listen(); else window.addEventListener("load", listen);
</script></body></html>
"""
