// The page: find the visitor (browser geolocation or IP), ask /api/nearest, draw cards and
// an offline SVG map. Every piece of data goes into the DOM as text, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const GEO_TIMEOUT_MS = 8000;
const LIMIT = 10;
const state = { seq: 0, retry: null };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", Boolean(isError));
}

function setMode(mode) {
  $("use-browser").setAttribute("aria-pressed", String(mode === "browser"));
  $("use-ip").setAttribute("aria-pressed", String(mode === "ip"));
  try { localStorage.setItem("whc-mode", mode); } catch (e) { /* private mode: no memory */ }
}

// --- where the visitor is -----------------------------------------------------------------

function useIp(note) {
  setMode("ip");
  load(null, note || "");
}

function useBrowser() {
  setMode("browser");
  if (!("geolocation" in navigator)) return useIp("Your browser cannot share its position. ");
  setStatus("Asking your browser for your position…");
  let settled = false;
  // The API's own timeout only starts once the visitor has answered the prompt.
  const timer = setTimeout(() => {
    if (!settled) { settled = true; useIp("No answer from browser geolocation. "); }
  }, GEO_TIMEOUT_MS + 2000);
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      if (settled) return;
      settled = true; clearTimeout(timer);
      load({ lat: pos.coords.latitude, lon: pos.coords.longitude }, "");
    },
    (err) => {
      if (settled) return;
      settled = true; clearTimeout(timer);
      useIp(err.code === 1 ? "Location access was refused. " : "Your position is not available. ");
    },
    { timeout: GEO_TIMEOUT_MS, maximumAge: 600000, enableHighAccuracy: false },
  );
}

async function start() {
  $("use-browser").addEventListener("click", useBrowser);
  $("use-ip").addEventListener("click", () => useIp(""));
  let mode = null;
  try { mode = localStorage.getItem("whc-mode"); } catch (e) { mode = null; }
  if (!mode && navigator.permissions) {
    try {
      const p = await navigator.permissions.query({ name: "geolocation" });
      mode = p.state === "granted" ? "browser" : "ip";
    } catch (e) { mode = "ip"; }
  }
  loadMap();
  if (mode === "browser") useBrowser(); else useIp("");
}

// --- the API ------------------------------------------------------------------------------

async function load(coords, note) {
  const seq = ++state.seq;
  clearTimeout(state.retry);
  const q = new URLSearchParams({ limit: String(LIMIT) });
  if (coords) { q.set("lat", coords.lat.toFixed(6)); q.set("lon", coords.lon.toFixed(6)); }
  let resp, data;
  try {
    resp = await fetch("/api/nearest?" + q.toString(), { headers: { Accept: "application/json" } });
    data = await resp.json();
  } catch (e) {
    if (seq === state.seq) setStatus(note + "The service cannot be reached. Try again later.", true);
    return;
  }
  if (seq !== state.seq) return;  // a newer request is on its way
  if (!resp.ok) {
    const wait = Number(resp.headers.get("Retry-After")) || 10;
    const reason = data && data.reason ? data.reason : "HTTP " + resp.status;
    setStatus(`${note}Sites are unavailable right now (${reason}); retrying in ${wait} s.`, true);
    state.retry = setTimeout(() => load(coords, note), wait * 1000);
    return;
  }
  setStatus(`${note}Showing sites near ${data.location}${data.cached ? " · served from cache" : ""}.`);
  renderCards(data.nearestSites);
  renderMarkers(data, data.nearestSites);
}

// --- cards --------------------------------------------------------------------------------

function placeholder(site) {
  const initial = site.category ? site.category.charAt(0) : "?";
  return el("div", { class: "placeholder " + site.category, role: "img",
    "aria-label": "No photo available" }, initial);
}

function thumbnail(site) {
  if (navigator.onLine === false) return placeholder(site);
  const img = el("img", {
    class: "thumb", alt: "", loading: "lazy", referrerpolicy: "no-referrer",
    src: `https://whc.unesco.org/uploads/sites/site_${encodeURIComponent(site.id_no)}.jpg`,
  });
  img.addEventListener("error", () => img.replaceWith(placeholder(site)), { once: true });
  return img;
}

function renderCards(sites) {
  const list = $("sites");
  list.replaceChildren();
  sites.forEach((site, i) => {
    const url = `https://whc.unesco.org/en/list/${encodeURIComponent(site.id_no)}/`;
    const km = site.distance / 1000;
    const dist = km < 10 ? km.toFixed(1) : Math.round(km).toLocaleString("en");
    const body = el("div", { class: "card-body" },
      el("h2", {}, `${i + 1}. `, el("a", { href: url, rel: "noopener", target: "_blank" }, site.name_en)),
      el("p", { class: "meta" }, el("span", { class: "distance" }, `${dist} km`), ` · ${site.category}`),
      el("p", { class: "meta country" }, site.states_name_en),
      el("p", { class: "meta" }, `Inscribed ${site.date_inscribed}`),
    );
    const card = el("li", { class: "card", "data-id": String(site.id_no) }, thumbnail(site), body);
    list.append(card);
  });
}

// --- the map (equirectangular SVG from TopoJSON, no tiles) -------------------------------

function decodeArcs(topo) {
  const [sx, sy] = topo.transform ? topo.transform.scale : [1, 1];
  const [tx, ty] = topo.transform ? topo.transform.translate : [0, 0];
  return topo.arcs.map((arc) => {
    let x = 0, y = 0;
    return arc.map(([dx, dy]) => {
      if (topo.transform) { x += dx; y += dy; } else { x = dx; y = dy; }
      return [x * sx + tx, y * sy + ty];
    });
  });
}

function ringPath(arcs, indexes) {
  let pts = [];
  for (const i of indexes) {
    let a = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
    if (pts.length) a = a.slice(1);
    pts = pts.concat(a);
  }
  let d = "", prev = null;
  for (const [lon, lat] of pts) {
    const jump = prev === null || Math.abs(lon - prev) > 180;
    d += (jump ? "M" : "L") + lon.toFixed(2) + " " + (-lat).toFixed(2);
    prev = lon;
  }
  return d + "Z";
}

async function loadMap() {
  let topo;
  try {
    const resp = await fetch("/map/countries-110m.json");
    if (!resp.ok) return;  // outlines not installed: markers on a plain sea still work
    topo = await resp.json();
  } catch (e) { return; }
  const arcs = decodeArcs(topo);
  const world = svg("g", { id: "world" });
  for (const g of topo.objects.countries.geometries) {
    const polys = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : [];
    let d = "";
    for (const poly of polys) for (const ring of poly) d += ringPath(arcs, ring);
    if (d) world.append(svg("path", { d }));
  }
  const land = $("land");
  land.replaceChildren(world);
  for (const shift of [-360, 360]) {  // copies so views across the antimeridian stay filled
    const copy = world.cloneNode(true);
    copy.removeAttribute("id");
    copy.setAttribute("transform", `translate(${shift} 0)`);
    land.append(copy);
  }
}

function unwrap(lon, around) {
  while (lon - around > 180) lon -= 360;
  while (lon - around < -180) lon += 360;
  return lon;
}

function renderMarkers(data, sites) {
  const you = [data.longitude, -data.latitude];
  const pts = sites.map((s) => [unwrap(s.longitude, data.longitude), -s.latitude]);
  const xs = [you[0], ...pts.map((p) => p[0])], ys = [you[1], ...pts.map((p) => p[1])];
  let minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  let w = Math.max(maxX - minX, 2) * 1.3, h = Math.max(maxY - minY, 1) * 1.3;
  if (w < 2 * h) w = 2 * h; else h = w / 2;
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  const map = $("map");
  map.setAttribute("viewBox", `${cx - w / 2} ${cy - h / 2} ${w} ${h}`);
  const r = w / 90;
  const g = $("markers");
  g.replaceChildren();
  pts.forEach((p, i) => {
    const dot = svg("circle", { cx: p[0], cy: p[1], r, class: "marker " + sites[i].category });
    const title = svg("title");
    title.textContent = `${i + 1}. ${sites[i].name_en}`;
    dot.append(title);
    const label = svg("text", { x: p[0], y: p[1], class: "marker-label", "font-size": r * 1.2 });
    label.textContent = String(i + 1);
    g.append(dot, label);
  });
  const me = svg("circle", { cx: you[0], cy: you[1], r: r * 0.8, class: "marker you" });
  const t = svg("title");
  t.textContent = "You";
  me.append(t);
  g.append(me);
}

document.addEventListener("DOMContentLoaded", start);

// The "sample data" banner: /api/meta says whether the invented sample list is loaded.
(async function sampleBanner() {
  try {
    const meta = await (await fetch("/api/meta", { headers: { Accept: "application/json" } })).json();
    if (!meta.sample) return;
    const banner = document.getElementById("sample-banner");
    banner.textContent = "Sample data: these sites are invented, not the UNESCO list. " + meta.howToLoad;
    banner.hidden = false;
  } catch (e) {
    // No banner when the API is unreachable; the list reports that itself.
  }
})();
