// Wires the page to the Python side (pgws_playground.py), which runs with Pyodide and the driver
// in a Web Worker (playground-worker.mjs), all from this server (never a CDN). The editors and
// buttons work at once: a run asked for before Python is ready waits for it. `window.playground`
// is the same API for scripts and the browser tests: each call returns the Python side's JSON
// text, `ready` what was loaded and how long it took.
const $ = (id) => document.getElementById(id);
const STEPS = 4;
const status = (state, text) => {
  $("status").dataset.state = state;
  $("status").textContent = text;
};
const step = (n, text) => {
  $("progress").value = n;
  status("loading", `${text} (step ${n + 1} of ${STEPS})`);
};

const EXAMPLES = {
  nearest: `# The ten sites nearest to a point, with the distance in km.
rows = await conn.fetch("""
    SELECT name_en, states_name_en,
           round((location <-> ST_MakePoint($1, $2)::geography)::numeric / 1000) AS km,
           location
    FROM whc_sites
    ORDER BY location <-> ST_MakePoint($1, $2)::geography
    LIMIT 10""", 2.3522, 48.8566)
for r in rows:
    print(f"{r['km']:>6} km  {r['name_en']}")
rows  # the last expression is shown as a table
`,
  refused: `# The playground role is read-only: Postgres refuses the write and says why.
try:
    await conn.execute("DELETE FROM whc_sites WHERE id_no = 1")
except driver.PostgresError as exc:
    print("refused:", exc.sqlstate, exc.message)
# Not caught, the error is shown with its traceback and SQLSTATE:
await conn.execute("UPDATE whc_sites SET name_en = 'x'")
`,
  transaction: `# The driver has no server-side cursor yet, so this example reads in pages with a
# prepared statement inside one read-only transaction (one snapshot for every page).
async with conn.transaction(readonly=True):
    page = await conn.prepare(
        "SELECT id_no, name_en FROM whc_sites ORDER BY id_no LIMIT 5 OFFSET $1")
    for offset in (0, 5, 10):
        rows = await page.fetch(offset)
        print(offset, [r["id_no"] for r in rows])
await conn.fetchval("SELECT count(*) FROM whc_sites")
`,
  count: `rows = await conn.fetch(
    "SELECT category, count(*) AS sites FROM whc_sites GROUP BY 1 ORDER BY 2 DESC")
print(len(rows), "categories")
rows
`,
};

// Python lives in a Web Worker (playground-worker.mjs), started by the page's head before this
// script runs; the messages it sent meanwhile wait in `pgwsBoot.early`. Times are in ms since
// the navigation started (the worker's clock is turned into the page's).
const { worker, early } = window.pgwsBoot;
const since = (clock) => Math.round(clock - performance.timeOrigin);
const pending = new Map();
let nextId = 1;
let bootDone, bootFailed;
const booted = new Promise((resolve, reject) => { bootDone = resolve; bootFailed = reject; });

function onWorkerMessage(msg) {
  if (msg.type === "progress") step(msg.step, msg.text);
  else if (msg.type === "ready") {
    const stages = Object.fromEntries(Object.entries(msg.stages).map(([k, v]) => [k, since(v)]));
    performance.mark("playground-python-ready");
    bootDone({ loadMs: since(msg.clock), python: msg.python, pyodide: msg.pyodide, stages,
      resources: msg.resources });
  } else if (msg.type === "failed") bootFailed(new Error(msg.error));
  else if (msg.type === "result") {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.ok) resolve(msg.value); else reject(new Error(msg.error));
  }
}
worker.onmessage = (event) => onWorkerMessage(event.data);
worker.onerror = (event) => bootFailed(new Error(event.message || "the Python worker failed"));
for (const msg of early.splice(0)) onWorkerMessage(msg);
if ($("progress").value === 0) step(0, "Fetching the configuration");

function ask(op, ...args) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, op, args });
  });
}

window.playground = {
  ready: booted,
  run: (sql, args = []) => ask("run", sql, JSON.stringify(args)),
  nearest: (lon, lat, limit = 10) => ask("nearest", lon, lat, limit),
  runPython: (code) => ask("runPython", code),
  python: (code) => ask("python", code),
};

function cellText(v) {
  if (v === null) return "NULL";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderTable(result) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of result.columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of result.rows) {
    const tr = body.insertRow();
    for (const v of row) {
      const td = tr.insertCell();
      td.textContent = cellText(v);
      if (v === null) td.className = "null";
    }
  }
  $("results").appendChild(table);
}

function clearOutput() {
  $("results").replaceChildren();
  $("printed").hidden = true;
  $("printed").textContent = "";
  $("error").hidden = true;
  $("error").textContent = "";
  $("timing").textContent = "";
}

function render(text) {
  const result = JSON.parse(text);
  clearOutput();
  if (result.error) {
    $("error").hidden = false;
    $("error").textContent = result.sqlstate
      ? `SQLSTATE ${result.sqlstate}: ${result.error}` : String(result.error);
  }
  if (result.output) {
    $("printed").hidden = false;
    $("printed").textContent = result.output;
  }
  const table = result.columns ? result : result.value;
  if (table) renderTable(table);
  const parts = [];
  if (result.connect_ms != null) parts.push(`connect ${result.connect_ms.toFixed(1)} ms`);
  if (result.query_ms != null) parts.push(`query ${result.query_ms.toFixed(1)} ms`);
  if (result.run_ms != null) parts.push(`run ${result.run_ms.toFixed(1)} ms`);
  if (table) parts.push(`${table.row_count} rows` +
    (table.truncated ? ` (showing ${table.rows.length})` : ""));
  $("timing").textContent = parts.join(", ");
  return result;
}

let busy = false;
async function act(button, call) {
  if (busy) return;
  busy = true;
  button.disabled = true;
  const waiting = $("status").dataset.state === "loading";
  if (waiting) status("loading", "Waiting for Python to finish loading, then running…");
  try {
    await booted;
    status("busy", "Running…");
    const result = render(await call());
    status(result.error ? "error" : "ready",
      result.error ? "Finished with an error (shown below)." : "Done. Ready.");
  } catch (err) {
    status("error", String(err));
  } finally {
    busy = false;
    button.disabled = false;
  }
}

// Editors: CodeMirror (from npm, served by this site) over the plain textareas, which stay
// as the fallback when the script did not load.
function editor(textarea, mode, run) {
  if (!window.CodeMirror) {
    textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
    });
    return { getValue: () => textarea.value, setValue: (v) => { textarea.value = v; } };
  }
  const cm = CodeMirror.fromTextArea(textarea, {
    mode, lineNumbers: mode === "python", indentUnit: 4, matchBrackets: true,
    viewportMargin: Infinity, lineWrapping: true,
    extraKeys: { "Ctrl-Enter": run, "Cmd-Enter": run, Tab: "indentMore", "Shift-Tab": "indentLess",
      Esc: () => cm.getInputField().blur() },
    screenReaderLabel: textarea.labels && textarea.labels[0] ? textarea.labels[0].textContent : "",
  });
  const input = cm.getInputField();
  input.setAttribute("aria-label", textarea.labels[0].textContent);
  return cm;
}

function wire() {
  const runPython = () => act($("run-python"), () => window.playground.runPython(py.getValue()));
  const runSql = () => act($("run"), () => window.playground.run(sql.getValue()));
  const py = editor($("code"), "python", runPython);
  const sql = editor($("sql"), "text/x-pgsql", runSql);
  window.playground.editors = { py, sql };
  performance.mark("playground-editors-ready");
  py.setValue(EXAMPLES.nearest);
  $("example").addEventListener("change", () => py.setValue(EXAMPLES[$("example").value]));
  $("run-python").onclick = runPython;
  $("run").onclick = runSql;
  $("nearest").onclick = () => act($("nearest"),
    () => window.playground.nearest(Number($("lon").value), Number($("lat").value)));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
else wire();

booted.then(({ loadMs, python, pyodide }) => {
  $("progress").value = STEPS;
  $("progress").hidden = true;
  $("runtime").textContent = `Python ${python}`;
  status("ready", `Python ${python} ready (Pyodide ${pyodide}, loaded in ` +
    `${(loadMs / 1000).toFixed(1)} s).`);
}, (err) => status("error", `Could not start Python: ${err}`));
