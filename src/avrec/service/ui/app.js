// avrec web page: a visitor picks favourites or types a request, then like/skip runs the next round.
// The page keeps no token: POST /api/visitors sets it in an HttpOnly, SameSite=Strict cookie
// (sent with every same-origin /api request) and answers the same visitor again after a
// reload. Only the visitor's ID is kept, in memory.
const $ = (id) => document.getElementById(id);
let visitorId = null;
let round = 0, offset = 0, lastQuery = null;

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  const res = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (!res.ok) throw new Error(`${res.status}: ${(await res.json().catch(() => ({}))).detail || res.statusText}`);
  return res.json();
}

async function ensureVisitor() {
  if (!visitorId) visitorId = (await api("/api/visitors", { method: "POST" })).user_id;
  $("visitor").textContent = visitorId;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => (k.startsWith("on") ? node.addEventListener(k.slice(2), v) : node.setAttribute(k, v)));
  children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(c ?? "")));
  return node;
}

function poster(item) {
  const img = el("img", { src: item.poster || `/media/${encodeURIComponent(item.item_id)}`, alt: item.title || item.item_id, loading: "lazy" });
  img.onerror = () => img.replaceWith(el("div", { class: "noimg" }, item.title || item.item_id));
  return img;
}

function understandingText(u) {
  if (!u) return "";
  const parts = [];
  if (u.visual && u.visual.length) parts.push("🎞 " + u.visual.slice(0, 3).join(", "));
  if (u.sound && u.sound.length) parts.push("🔊 " + u.sound.slice(0, 3).join(", "));
  if (u.moods && u.moods.length) parts.push("mood: " + u.moods.slice(0, 2).join(", "));
  if (u.language && u.language.length) parts.push("lang: " + u.language[0]);
  if (u.not_understood && u.not_understood.length) parts.push("not understood: " + u.not_understood.join(", "));
  return parts.join(" · ");
}

async function loadCatalog(reset = false) {
  if (reset) { offset = 0; $("catalog").innerHTML = ""; }
  const q = $("filter").value.trim();
  const page = await api(`/api/items?offset=${offset}&limit=24${q ? "&q=" + encodeURIComponent(q) : ""}`);
  page.items.forEach((item) => $("catalog").append(el("div", { class: "card", "data-item": item.item_id },
    poster(item), el("div", { class: "title" }, item.title || item.item_id),
    el("div", { class: "muted" }, (item.genres || []).join(", ")),
    el("div", { class: "und" }, understandingText(item.understanding)),
    el("button", { class: "fav", onclick: () => feedback(item.item_id, "like") }, "♥ favourite"))));
  offset += page.items.length;
  $("more").hidden = offset >= page.total;
}

async function feedback(itemId, event) {
  await ensureVisitor();
  const body = JSON.stringify({ user_id: visitorId, item_id: itemId, event });
  await api("/api/events", { method: "POST", body });
  lastQuery = null;
  await refresh();
}

// The visitor's own list, with the typed request if any (the request narrows what, the
// visitor's likes decide which); null while the visitor has no signals (404).
async function forVisitor(params) {
  const q = lastQuery ? `&q=${encodeURIComponent(lastQuery)}` : "";
  try {
    return await api(`/api/users/${encodeURIComponent(visitorId)}/recommendations?${params}${q}`);
  } catch (e) {
    if (String(e).startsWith("Error: 404")) return null;
    throw e;
  }
}

async function refresh() {
  await ensureVisitor();
  const diversity = Number($("diversity").value);  // DPP re-ranking: 0 is the model's own order
  const rerank = diversity > 0 ? "dpp" : "none";
  let recs = await forVisitor(`k=10&rerank=${rerank}&diversity=${diversity}`);
  // a request before any signal: the request alone (the visitor's path knows no one yet)
  if (!recs && lastQuery) recs = await api("/api/recommendations", { method: "POST", body: JSON.stringify({ query: lastQuery, k: 10, rerank, diversity }) });
  if (!recs) return;  // no signals yet
  round += 1;
  $("round").textContent = `(round ${round})`;
  $("recs-hint").hidden = true;
  $("recs").innerHTML = "";
  recs.items.forEach((r) => $("recs").append(el("li", { "data-item": r.item_id },
    el("div", { class: "title" }, r.title || r.item_id), el("span", { class: "muted" }, (r.genres || []).join(", ")),
    " ", el("span", { class: "score", title: "score" }, r.score.toFixed(3)),
    el("div", { class: "expl" }, r.explanation || ""),
    el("button", { class: "like", onclick: () => feedback(r.item_id, "like") }, "👍 like"), " ",
    el("button", { class: "skip", onclick: () => feedback(r.item_id, "skip") }, "⏭ skip"), " ",
    el("button", { class: "why", onclick: () => why(r) }, "why this?"))));
  await showProfile();
}

async function why(rec) {
  const item = await api(`/api/items/${encodeURIComponent(rec.item_id)}`);
  const readable = (a) => Object.entries(a || {}).filter(([, v]) => v !== null && v !== "" && typeof v !== "object" || Array.isArray(v))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.map((x) => (x && x.label) || x).slice(0, 5).join(", ") : v}`).join("; ");
  const und = Object.entries(item.understanding || {}).map(([m, u]) =>
    el("li", { "data-modality": m }, el("b", {}, m), ` ${u.status}`, u.reason ? ` (${u.reason})` : "",
      u.attributes ? " — " + readable(u.attributes).slice(0, 300) : ""));
  $("why-body").replaceChildren(el("p", {}, el("b", {}, item.title || item.item_id)),
    el("p", {}, rec.explanation || "no explanation"), el("p", { class: "muted" }, item.description || ""),
    el("p", { class: "muted" }, `genres: ${(item.genres || []).join(", ")}; ${item.interactions} people interacted`),
    und.length ? el("ul", {}, und) : el("p", { class: "muted" }, "no media understanding stored for this item"));
  $("why").hidden = false;
}

function bar(weight) {  // width through the CSSOM: the page's CSP allows no inline style attributes
  const node = el("div", { class: "bar" });
  node.style.width = `${Math.round(weight * 100)}%`;
  return node;
}

async function showProfile() {
  const p = await api(`/api/users/${encodeURIComponent(visitorId)}/profile`);
  const facets = Object.entries(p).filter(([, v]) => Array.isArray(v) && v.length);
  $("profile").replaceChildren(el("p", { class: "muted" }, `${p.history_size} liked · ${p.disliked_or_skipped} skipped`),
    ...facets.map(([name, values]) => el("div", { class: "facet", "data-facet": name }, el("b", {}, name),
      ...values.map((v) => el("div", { class: "row" }, el("span", {}, v.name),
        bar(v.weight), el("span", {}, v.weight.toFixed(2)))))));
}

$("ask").addEventListener("submit", async (e) => { e.preventDefault(); lastQuery = $("query").value.trim() || null; if (lastQuery) await refresh(); });
$("browse").addEventListener("submit", (e) => { e.preventDefault(); loadCatalog(true); });
$("more").addEventListener("click", () => loadCatalog());
$("diversity").addEventListener("change", () => refresh());
ensureVisitor().then(() => loadCatalog(true)).then(() => refresh());
