// Loads Pyodide from this server (never a CDN), unpacks the driver bundle into it, and wires the
// page's buttons to the Python side (pgws_playground.py). `window.playground` is the same API
// for scripts and the browser tests: each call returns the Python side's JSON text.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const $ = (id) => document.getElementById(id);
const status = (state, text) => { $("status").dataset.state = state; $("status").textContent = text; };

async function boot() {
  const t0 = performance.now();
  const config = await (await fetch("config.json")).json();
  const base = new URL(config.pyodide, location.href).href;
  const [pyodide, bundle] = await Promise.all([
    loadPyodide({ indexURL: base }),
    fetch(config.bundle).then((r) => {
      if (!r.ok) throw new Error(`driver bundle: HTTP ${r.status}`);
      return r.arrayBuffer();
    }),
  ]);
  pyodide.unpackArchive(bundle, "zip", { extractDir: "/home/pyodide/pgws" });
  pyodide.runPython("import sys; sys.path.insert(0, '/home/pyodide/pgws')");
  const mod = pyodide.pyimport("pgws_playground");
  const session = mod.Playground(JSON.stringify(config));
  const loadMs = performance.now() - t0;
  return { pyodide, session, loadMs };
}

const booted = boot();

window.playground = {
  ready: booted.then(({ pyodide, loadMs }) => ({ loadMs, python: pyodide.version })),
  async run(sql, args = []) {
    const { session } = await booted;
    return session.run(sql, JSON.stringify(args));
  },
  async nearest(lon, lat, limit = 10) {
    const { session } = await booted;
    return session.nearest(lon, lat, limit);
  },
  async python(code) {
    const { pyodide } = await booted;
    return String(await pyodide.runPythonAsync(code));
  },
};

function render(text) {
  const result = JSON.parse(text);
  const out = $("results");
  out.replaceChildren();
  $("error").hidden = !result.error;
  if (result.error) {
    $("error").textContent = `${result.sqlstate ?? "error"}: ${result.error}`;
    $("timing").textContent = "";
    return result;
  }
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of result.columns) head.appendChild(document.createElement("th")).textContent = c;
  const body = table.createTBody();
  for (const row of result.rows) {
    const tr = body.insertRow();
    for (const v of row) tr.insertCell().textContent = v === null ? "NULL" : String(v);
  }
  out.appendChild(table);
  const connect = result.connect_ms == null ? "" : `connect ${result.connect_ms.toFixed(1)} ms, `;
  const more = result.truncated ? ` (showing ${result.rows.length})` : "";
  $("timing").textContent =
    `${connect}query ${result.query_ms.toFixed(1)} ms, ${result.row_count} rows${more}`;
  return result;
}

async function act(button, call) {
  button.disabled = true;
  status("busy", "Running…");
  try {
    render(await call());
    status("ready", "Ready.");
  } catch (err) {
    status("error", String(err));
  } finally {
    button.disabled = false;
  }
}

booted.then(({ pyodide, loadMs }) => {
  status("ready", `Python ${pyodide.version} loaded in ${loadMs.toFixed(0)} ms. Ready.`);
  for (const id of ["nearest", "run"]) $(id).disabled = false;
  $("nearest").onclick = () =>
    act($("nearest"), () => window.playground.nearest(Number($("lon").value), Number($("lat").value)));
  $("run").onclick = () => act($("run"), () => window.playground.run($("sql").value));
}, (err) => status("error", `Could not start Python: ${err}`));
