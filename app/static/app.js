// The page: find the visitor (browser geolocation or IP), ask /api/nearest, draw cards and a
// Leaflet map on offline Natural Earth outlines. Every piece of data goes into the DOM as text,
// never as HTML. `window.whc` exposes the map and the last answer for the browser tests.
"use strict";

const GEO_TIMEOUT_MS = 8000;
const LIMIT = 10;
const BACKOFF_S = [1, 2, 4, 8, 15, 30];
const state = {
  seq: 0, retryTimer: null, tick: null, failures: 0, coords: null, note: "",
  map: null, markers: [], homes: [], leaders: null, you: null, selected: -1, detail: null,
  data: null,
};
window.whc = state;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
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
  $("default-browser").addEventListener("click", useBrowser);
  $("use-ip").addEventListener("click", () => useIp(""));
  $("retry-now").addEventListener("click", () => load(state.coords, state.note));
  initMap();
  let mode = null;
  try { mode = localStorage.getItem("whc-mode"); } catch (e) { mode = null; }
  if (!mode && navigator.permissions) {
    try {
      const p = await navigator.permissions.query({ name: "geolocation" });
      mode = p.state === "granted" ? "browser" : "ip";
    } catch (e) { mode = "ip"; }
  }
  if (mode === "browser") useBrowser(); else useIp("");
}

// --- the API: loading state, retry with back-off -----------------------------------------

function fmtCoord(v, pos, neg) { return `${Math.abs(v).toFixed(2)}° ${v >= 0 ? pos : neg}`; }

function describe(data, coords) {
  if (coords) {
    return `near ${fmtCoord(coords.lat, "N", "S")}, ${fmtCoord(coords.lon, "E", "W")}, ` +
      "the position your browser gave";
  }
  const loc = String(data.location || "");
  const m = /^(.*) \(default: .*\)$/.exec(loc);
  if (m) return `near ${m[1]}, a default place`;
  const ip = /^(.*) \(from your IP address(, via .*)?\)$/.exec(loc);
  if (ip) return `near ${ip[1]}, located from your IP address`;
  return `near ${loc}`;
}

function showLoading(text) {
  $("main").setAttribute("aria-busy", "true");
  $("sites").classList.add("loading");
  setStatus(text);
}

function scheduleRetry(coords, note, reason, retryAfter) {
  const wait = retryAfter || BACKOFF_S[Math.min(state.failures, BACKOFF_S.length - 1)];
  state.failures += 1;
  let left = wait;
  const show = () => {
    $("retry-text").textContent =
      `${note}${reason} Trying again in ${left} s (attempt ${state.failures + 1}).`;
  };
  $("retry-box").hidden = false;
  show();
  setStatus(`${note}${reason}`, true);
  clearInterval(state.tick);
  state.tick = setInterval(() => { left = Math.max(0, left - 1); show(); }, 1000);
  state.retryTimer = setTimeout(() => load(coords, note), wait * 1000);
}

async function load(coords, note) {
  const seq = ++state.seq;
  clearTimeout(state.retryTimer);
  clearInterval(state.tick);
  state.coords = coords; state.note = note;
  const q = new URLSearchParams({ limit: String(LIMIT) });
  if (coords) { q.set("lat", coords.lat.toFixed(6)); q.set("lon", coords.lon.toFixed(6)); }
  showLoading(`${note}Looking up the nearest sites…`);
  let resp, data;
  try {
    resp = await fetch("/api/nearest?" + q.toString(), { headers: { Accept: "application/json" } });
    data = await resp.json();
  } catch (e) {
    if (seq === state.seq) scheduleRetry(coords, note, "The service cannot be reached.", 0);
    return;
  }
  if (seq !== state.seq) return;  // a newer request is on its way
  if (!resp.ok) {
    if (resp.status >= 500) {
      const reason = data && data.reason ? `Sites are unavailable right now (${data.reason}).`
        : `Sites are unavailable right now (HTTP ${resp.status}).`;
      return scheduleRetry(coords, note, reason, Number(resp.headers.get("Retry-After")) || 0);
    }
    setStatus(`${note}The service refused the request (HTTP ${resp.status}).`, true);
    return;
  }
  state.failures = 0;
  $("retry-box").hidden = true;
  state.data = data;
  const isDefault = data.viaIp && /\(default: /.test(String(data.location || ""));
  $("default-box").hidden = !isDefault;
  if (isDefault) {
    $("default-text").textContent = "Your network address cannot be located (a local or " +
      "private address, or one missing from the GeoIP database), so the sites shown are " +
      "near a default place. Your browser can tell the page where you are instead.";
  }
  setStatus(`${note}Showing the ${data.nearestSites.length} sites ${describe(data, coords)}` +
    `${data.cached ? " (served from cache)" : ""}.`);
  renderCards(data.nearestSites);
  renderMap(data, data.nearestSites);
  if (!performance.getEntriesByName("whc-sites-shown").length) performance.mark("whc-sites-shown");
  $("main").setAttribute("aria-busy", "false");
  $("sites").classList.remove("loading");
}

// --- cards --------------------------------------------------------------------------------

function thumbnail(site) {
  // One alt-text policy: photos are decorative (the heading names the site), so alt="".
  const box = el("div", { class: "thumb-box " + site.category, "aria-hidden": "true" });
  if (navigator.onLine === false) return box;
  const img = el("img", {
    class: "thumb", alt: "", loading: "lazy", referrerpolicy: "no-referrer",
    src: `https://whc.unesco.org/uploads/sites/site_${encodeURIComponent(site.id_no)}.jpg`,
  });
  img.addEventListener("error", () => { img.remove(); box.classList.add("no-photo"); },
    { once: true });
  box.append(img);
  return box;
}

function kmText(m) {
  const km = m / 1000;
  return km < 10 ? km.toFixed(1) : Math.round(km).toLocaleString("en");
}

function renderCards(sites) {
  const list = $("sites");
  list.replaceChildren();
  sites.forEach((site, i) => {
    const url = `https://whc.unesco.org/en/list/${encodeURIComponent(site.id_no)}/`;
    const show = el("button", { type: "button", class: "badge " + site.category,
      "aria-label": `Show ${i + 1}. ${site.name_en} on the map` }, String(i + 1));
    show.addEventListener("click", (ev) => { ev.stopPropagation(); select(i, "card"); });
    const body = el("div", { class: "card-body" },
      el("h3", {}, el("a", { href: url, rel: "noopener", target: "_blank" }, site.name_en)),
      el("p", { class: "meta" }, el("span", { class: "distance" }, `${kmText(site.distance)} km`),
        ` · ${site.category} · Inscribed ${site.date_inscribed}`),
      el("p", { class: "meta country" }, site.states_name_en),
    );
    const card = el("li", { class: "card", "data-id": String(site.id_no), "data-rank": String(i) },
      show, body, thumbnail(site));
    card.addEventListener("click", (ev) => {
      if (ev.target.closest("a")) return;  // the link opens the site's page
      select(i, "card");
    });
    list.append(card);
  });
}

// --- the map ------------------------------------------------------------------------------

function unwrap(lon, around) {
  while (lon - around > 180) lon -= 360;
  while (lon - around < -180) lon += 360;
  return lon;
}

function unwrapRings(geo) {
  // A ring crossing the antimeridian jumps from +180 to -180; drawn as is, it streaks across
  // the world. Make each ring continuous (longitudes past 180); the shifted copies fill in.
  const fix = (ring) => {
    for (let k = 1; k < ring.length; k++) {
      const d = ring[k][0] - ring[k - 1][0];
      if (d > 180 || d < -180) ring[k] = [ring[k][0] - 360 * Math.round(d / 360), ring[k][1]];
    }
  };
  for (const f of geo.features) {
    const g = f.geometry;
    if (!g) continue;
    const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    for (const poly of polys) for (const ring of poly) fix(ring);
  }
  return geo;
}

function outlineLayer(geo, shift) {
  return L.geoJSON(geo, {
    interactive: false, pane: "outlines",
    style: { color: "#8c977f", weight: 0.8, fillColor: "#eef0e6", fillOpacity: 1 },
    coordsToLatLng: (c) => L.latLng(c[1], c[0] + shift),
  });
}

async function loadOutlines(file) {
  // world copies either side, so views across the antimeridian stay filled
  const resp = await fetch(state.worldUrl + file);
  if (!resp.ok) throw new Error(`outlines ${file}: HTTP ${resp.status}`);
  const topo = await resp.json();
  const geo = unwrapRings(topojson.feature(topo, topo.objects.countries));
  return L.layerGroup([-360, 0, 360].map((s) => outlineLayer(geo, s)));
}

function initMap() {
  const map = L.map("map", {
    worldCopyJump: false, zoomSnap: 0.25, minZoom: 1, maxZoom: 14, preferCanvas: true,
    attributionControl: true, zoomControl: true, tapTolerance: 20,
  });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com/">Leaflet</a>');
  map.attributionControl.addAttribution("Natural Earth");
  L.control.scale({ metric: true, imperial: true }).addTo(map);
  map.setView([20, 0], 2);
  map.createPane("outlines").style.zIndex = "150";  // under the tiles (200), if any
  state.map = map;
  // Online raster tiles only when the operator opted in (MAP_TILES_URL); the offline outlines
  // stay underneath, so the map still draws when the tile server cannot be reached.
  const tiles = document.querySelector('meta[name="whc-tiles"]');
  if (tiles && tiles.content) {
    L.tileLayer(tiles.content, { attribution: tiles.dataset.attribution || "", maxZoom: 18 })
      .addTo(map);
  }
  state.worldUrl = document.querySelector('meta[name="whc-world"]').content;
  // Coarse outlines first (small, quick), the 1:10m ones once the view is close enough.
  const coarse = loadOutlines("countries-50m.json").then((g) => { g.addTo(map); return g; })
    .catch(() => null);  // no outlines: markers on a plain sea still work
  const fine = () => {
    if (state.detail || map.getZoom() < 4.5) return;
    state.detail = loadOutlines("countries-10m.json").then(async (g) => {
      g.addTo(map);
      const c = await coarse;
      if (c) map.removeLayer(c);
      state.detailReady = true;
      return g;
    }).catch(() => null);
  };
  state.leaders = L.layerGroup().addTo(map);
  map.on("zoomend", fine);
  map.on("zoomend resize", () => spread(false));  // before the labels, which avoid markers
  map.on("zoomend moveend", placeLabels);
}

function markerIcon(site, i) {
  return L.divIcon({
    className: "site-marker " + site.category, iconSize: [34, 34], iconAnchor: [17, 17],
    html: `<span aria-hidden="true">${i + 1}</span>`,
  });
}

function renderMap(data, sites) {
  const map = state.map;
  for (const m of state.markers) m.remove();
  if (state.you) state.you.remove();
  state.markers = [];
  state.homes = [];
  state.selected = -1;
  const here = L.latLng(data.latitude, data.longitude);
  state.you = L.marker(here, {
    icon: L.divIcon({ className: "you-marker", iconSize: [22, 22], iconAnchor: [11, 11] }),
    keyboard: false, interactive: false, zIndexOffset: -100,
  }).bindTooltip("You are here", { permanent: true, direction: "left", offset: [-12, 0],
    className: "map-label you-label" }).addTo(map);
  const points = [here];
  sites.forEach((site, i) => {
    const ll = L.latLng(site.latitude, unwrap(site.longitude, data.longitude));
    points.push(ll);
    const m = L.marker(ll, { icon: markerIcon(site, i), title: `${i + 1}. ${site.name_en}`,
      alt: `${i + 1}. ${site.name_en}`, keyboard: true, riseOnHover: true,
      zIndexOffset: (LIMIT - i) * 10 })
      // a text node, never a string: Leaflet would parse a string as HTML
      .bindTooltip(el("span", {}, site.name_en), { permanent: true, direction: "right",
        offset: [16, 0],
        className: "map-label" })
      .addTo(map);
    const node = m.getElement();
    node.setAttribute("role", "button");
    node.setAttribute("aria-label", `${i + 1}. ${site.name_en}, ${kmText(site.distance)} km`);
    node.dataset.rank = String(i);
    m.on("click", () => select(i, "map"));
    state.homes.push(ll);
    node.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(i, "map"); }
    });
    state.markers.push(m);
  });
  map.fitBounds(L.latLngBounds(points), { padding: [36, 36], maxZoom: 11, animate: false });
  spread(true);
  placeLabels();
}

// --- markers that keep their own place in dense clusters ------------------------------------

const MARKER_PX = 34;
const MARKER_GAP = 4;

function separate(points, size, box) {
  // Push overlapping squares apart along the line joining their centres (a fixed angle per
  // index when they coincide) until no two are closer than `size` on either axis; `box`, when
  // given, keeps every centre inside it. Ten markers settle in a few rounds.
  const clamp = (p) => {
    if (!box) return;
    p.x = Math.min(Math.max(p.x, box.min.x), box.max.x);
    p.y = Math.min(Math.max(p.y, box.min.y), box.max.y);
  };
  for (let round = 0; round < 200; round++) {
    let moved = false;
    for (let a = 0; a < points.length; a++) {
      for (let b = a + 1; b < points.length; b++) {
        const p = points[a], q = points[b];
        let dx = q.x - p.x, dy = q.y - p.y;
        if (Math.max(Math.abs(dx), Math.abs(dy)) >= size) continue;
        if (Math.abs(dx) < 0.01 && Math.abs(dy) < 0.01) {
          const angle = b * 2.39996;  // the golden angle: coinciding points fan out evenly
          dx = Math.cos(angle); dy = Math.sin(angle);
        }
        const k = (size + 0.5) / Math.max(Math.abs(dx), Math.abs(dy));
        const ex = (dx * k - (q.x - p.x)) / 2, ey = (dy * k - (q.y - p.y)) / 2;
        p.x -= ex; p.y -= ey; q.x += ex; q.y += ey;
        clamp(p); clamp(q);
        moved = true;
      }
    }
    if (!moved) break;
  }
  return points;
}

function spread(inView) {
  // Sites closer together than a marker's width (a dense cluster, or one coordinate shared by
  // several sites) would stack their markers, leaving only the top one to tap. Each marker is
  // moved just enough to stand apart at this zoom, with a thin line back to the true position;
  // after fitting to the results (`inView`) every marker is also kept inside the map.
  const map = state.map;
  if (!state.homes.length) return;
  state.leaders.clearLayers();
  const size = map.getSize();
  const half = MARKER_PX / 2 + 2;
  const box = inView ? L.bounds([half, half], [size.x - half, size.y - half]) : null;
  const homes = state.homes.map((ll) => map.latLngToContainerPoint(ll));
  const placed = separate(homes.map((p) => p.clone()), MARKER_PX + MARKER_GAP, box);
  placed.forEach((p, i) => {
    const home = state.homes[i];
    const moved = p.distanceTo(homes[i]) > 1;
    state.markers[i].setLatLng(moved ? map.containerPointToLatLng(p) : home);
    if (!moved) return;
    const line = { interactive: false, color: "#3b4250", weight: 1.5, opacity: 0.8 };
    state.leaders.addLayer(L.polyline([home, state.markers[i].getLatLng()], line));
    state.leaders.addLayer(L.circleMarker(home, { ...line, radius: 3, fillOpacity: 1,
      fillColor: "#3b4250" }));
  });
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function placeLabels() {
  // In rank order, keep a label only where it hits no kept label and no marker but its own.
  if (!state.markers.length) return;
  const box = $("map").getBoundingClientRect();
  const marks = state.markers.map((m) => m.getElement().getBoundingClientRect());
  const kept = [];
  const items = state.markers.map((m, i) => [m.getTooltip(), i]);
  if (state.you) items.unshift([state.you.getTooltip(), -1]);
  for (const [tip, i] of items) {
    const node = tip && tip.getElement();
    if (!node) continue;
    node.classList.remove("hidden-label");
    const r = node.getBoundingClientRect();
    const inside = r.left >= box.left && r.right <= box.right && r.top >= box.top &&
      r.bottom <= box.bottom;
    const hit = kept.some((k) => overlaps(k, r)) ||
      marks.some((mr, j) => j !== i && overlaps(mr, r));
    if (!inside || hit) node.classList.add("hidden-label"); else kept.push(r);
  }
}

function select(i, from) {
  const cards = [...document.querySelectorAll("#sites li.card")];
  state.selected = i;
  cards.forEach((c, j) => {
    c.classList.toggle("selected", j === i);
    if (j === i) c.setAttribute("aria-current", "true"); else c.removeAttribute("aria-current");
  });
  state.markers.forEach((m, j) => {
    m.getElement().classList.toggle("selected", j === i);
    m.setZIndexOffset(j === i ? 1000 : (LIMIT - j) * 10);
  });
  const site = state.data && state.data.nearestSites[i];
  if (site) setStatus(`Selected ${i + 1}. ${site.name_en}, ${kmText(site.distance)} km away.`);
  if (from === "map") cards[i].scrollIntoView({ block: "nearest", behavior: "smooth" });
  else {
    const ll = state.markers[i].getLatLng();
    if (!state.map.getBounds().pad(-0.1).contains(ll)) state.map.panTo(ll);
  }
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
