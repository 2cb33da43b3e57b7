"""The live view (`GET /_cdp/ui`, and `/` for a browser): one self-contained page, no CDN and no
build step (the machine may be offline). It asks the server for the last calls that match its
filters (`/_cdp/calls?tail=…`: paging and filtering happen on the server, so 100,000 stored
calls cost the page nothing), adds new ones from the event stream (`/_cdp/events`), shows
refused requests in red with their errors, a selected call's JSON, and "copy as curl" (the key
left as $CDP_API_KEY, never shown)."""

from typing import Any

ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    b'fill="#2d6cdf"/><path d="M4 8h8M8 4v8" stroke="#fff" stroke-width="2"/></svg>'
)


def render(calls: list[dict[str, Any]], rejects: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    return PAGE


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cdp serve — live view</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#222;display:flex;flex-direction:column;height:100vh}
header{padding:8px 12px;background:#f4f4f4;border-bottom:1px solid #ddd;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
header b{margin-right:8px}
input,select,button{font:inherit;padding:2px 6px}
main{display:flex;flex:1;min-height:0}
#list{flex:3;overflow:auto;border-right:1px solid #ddd}
#detail{flex:2;overflow:auto;padding:8px 12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:260px}
th{position:sticky;top:0;background:#fff}
tr.call{cursor:pointer}
tr.call:hover,tr.sel{background:#eef4ff}
tr.reject{background:#fde8e8;color:#a40000;cursor:pointer}
pre{white-space:pre-wrap;word-break:break-all;background:#fafafa;border:1px solid #eee;padding:8px}
#status{margin-left:auto;color:#666}
</style></head>
<body>
<header><b>cdp serve</b>
<select id="type"><option value="">any type</option><option>identify</option><option>track</option><option>page</option><option>screen</option><option>group</option><option>alias</option></select>
<input id="event" placeholder="event">
<input id="user" placeholder="userId or anonymousId">
<label><input type="checkbox" id="showRejects" checked> rejects</label>
<span id="status">connecting…</span>
</header>
<main>
<div id="list"><table><thead><tr><th>#</th><th>received</th><th>type</th><th>event / name</th><th>user</th></tr></thead><tbody id="rows"></tbody></table></div>
<div id="detail"><p>Select a call to see its JSON.</p></div>
</main>
<script>
"use strict";
const MAX_ROWS = 500, TAIL = 200;
const rows = document.getElementById("rows"), detail = document.getElementById("detail");
const statusLine = document.getElementById("status");
const filter = {type: "", event: "", user: ""};
let counts = {calls: 0, rejects: 0};

function matches(call) {
  if (filter.type && call.type !== filter.type) return false;
  if (filter.event && call.event !== filter.event) return false;
  if (filter.user && call.userId !== filter.user && call.anonymousId !== filter.user) return false;
  return true;
}
function cell(text) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); td.title = td.textContent; return td; }
function trim() { while (rows.children.length > MAX_ROWS) rows.removeChild(rows.firstChild); }
function addCall(call) {
  const tr = document.createElement("tr");
  tr.className = "call";
  tr.dataset.seq = call._seq;
  for (const v of [call._seq, call.receivedAt, call.type, call.event || call.name || call.groupId || call.previousId || "", call.userId || call.anonymousId || ""]) tr.appendChild(cell(v));
  tr.onclick = () => show(tr, call, false);
  rows.appendChild(tr); trim();
}
function addReject(r) {
  if (!document.getElementById("showRejects").checked) return;
  const tr = document.createElement("tr");
  tr.className = "reject";
  for (const v of ["✗", r.receivedAt, r.status, r.path, (r.errors || []).join("; ")]) tr.appendChild(cell(v));
  tr.onclick = () => show(tr, r, true);
  rows.appendChild(tr); trim();
}
function curlFor(call) {
  const body = Object.assign({}, call); delete body._seq; delete body.receivedAt;
  const data = JSON.stringify(body).replace(/'/g, "'\\''");
  return "curl -X POST " + location.origin + "/v1/" + call.type + " -u \"$CDP_API_KEY:\" -H 'Content-Type: application/json' -H 'X-Strict-Mode: 1' -d '" + data + "'";
}
function show(tr, item, reject) {
  for (const s of rows.querySelectorAll(".sel")) s.classList.remove("sel");
  tr.classList.add("sel");
  detail.innerHTML = "";
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
async function load() {
  const q = new URLSearchParams({tail: TAIL});
  if (filter.type) q.set("type", filter.type);
  if (filter.event) q.set("event", filter.event);
  if (filter.user) q.set("user", filter.user);
  const calls = (await (await fetch("/_cdp/calls?" + q)).json()).calls;
  const rejects = filter.type || filter.event || filter.user ? [] : (await (await fetch("/_cdp/rejects?tail=" + TAIL)).json()).rejects;
  const items = calls.filter(matches).map(c => [c.receivedAt, 0, c]).concat(rejects.map(r => [r.receivedAt, 1, r]));
  items.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  rows.innerHTML = "";
  for (const [, kind, item] of items) kind ? addReject(item) : addCall(item);
  const s = await (await fetch("/_cdp/summary")).json();
  counts = {calls: s.accepted, rejects: s.rejected};
  showCounts();
}
function showCounts() { statusLine.textContent = counts.calls + " accepted, " + counts.rejects + " rejected · live"; }
for (const id of ["type", "event", "user"]) {
  document.getElementById(id).addEventListener("change", e => { filter[id] = e.target.value.trim(); load(); });
}
document.getElementById("showRejects").addEventListener("change", load);
load().then(() => {
  const events = new EventSource("/_cdp/events");
  events.addEventListener("call", e => { const c = JSON.parse(e.data); counts.calls++; showCounts(); if (matches(c)) addCall(c); });
  events.addEventListener("reject", e => { counts.rejects++; showCounts(); if (!filter.type && !filter.event && !filter.user) addReject(JSON.parse(e.data)); });
  events.addEventListener("reset", () => { counts = {calls: 0, rejects: 0}; rows.innerHTML = ""; showCounts(); });
  events.onerror = () => { statusLine.textContent = "disconnected; retrying…"; };
  events.onopen = () => showCounts();
  document.body.dataset.ready = "1";
});
</script></body></html>
"""
