// The playground's Python, in a Web Worker: Pyodide's download, compilation and start-up, the
// driver bundle and every run of the visitor's code happen here, so the page's main thread
// never freezes and the editors stay usable while Python loads. The driver's Pyodide transport
// works unchanged: a worker has `WebSocket` and `fetch` like a page.
//
// Messages from the page:
//   {op: "boot", config: URL of config.json}        once, first
//   {op: "wasm", module: WebAssembly.Module | null}  once: Pyodide's wasm, compiled by the page
//   {id, op: "run", args: [sql, argsJson]}           the SQL box        -> JSON text
//   {id, op: "nearest", args: [lon, lat, limit]}     nearest sites      -> JSON text
//   {id, op: "runPython", args: [code]}              the editor's code  -> JSON text (printed
//                                                    output, value, traceback, SQLSTATE)
//   {id, op: "python", args: [code]}                 raw runPythonAsync -> its value as text
// Messages to the page:
//   {type: "progress", step, text}                   what is loading now
//   {type: "ready", python, pyodide, stages, clock, resources}
//   {type: "failed", error}                          Python could not start
//   {type: "result", id, ok, value | error}          one per request, in request order
const clock = () => performance.timeOrigin + performance.now();
const stages = {};
const mark = (name) => { stages[name] = clock(); };
const progress = (step, text) => postMessage({ type: "progress", step, text });

let queue = Promise.resolve();  // requests run one after another, as on one connection
let compiled;  // Pyodide's wasm module as the page compiled it, or null: compile it here
const wasmModule = new Promise((resolve) => { compiled = resolve; });

// Pyodide fetches its wasm and instantiates it with instantiateStreaming(response, imports); it
// has no option taking a compiled module. So, until that one call, this worker answers the wasm
// URL with an empty response (no second download) and the call with the page's module; when
// the page could not compile it (null), both go through untouched.
function usePageModule(wasmUrl) {
  const realFetch = self.fetch;
  const realInstantiate = WebAssembly.instantiateStreaming;
  self.fetch = (input, init) => (String(input) === wasmUrl
    ? wasmModule.then((m) => (m ? new Response(new Uint8Array(0)) : realFetch(input, init)))
    : realFetch(input, init));
  WebAssembly.instantiateStreaming = async (source, imports) => {
    self.fetch = realFetch;
    WebAssembly.instantiateStreaming = realInstantiate;
    const module = await wasmModule;
    if (!module) return realInstantiate(source, imports);
    return { module, instance: await WebAssembly.instantiate(module, imports) };
  };
}

async function boot(configUrl) {
  mark("worker");
  const config = await (await fetch(configUrl)).json();
  mark("config");
  progress(1, "Downloading and starting Python (Pyodide)");
  const base = new URL(configUrl);
  const bundle = fetch(new URL(config.bundle, base)).then((r) => {
    if (!r.ok) throw new Error(`driver bundle: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
  const indexURL = new URL(config.pyodide, base).href;
  const { loadPyodide } = await import(indexURL + "pyodide.mjs");
  usePageModule(indexURL + "pyodide.asm.wasm");
  const pyodide = await loadPyodide({ indexURL });
  mark("pyodide");
  progress(2, "Loading the driver");
  pyodide.unpackArchive(await bundle, "zip", { extractDir: "/home/pyodide/pgws" });
  pyodide.runPython("import sys; sys.path.insert(0, '/home/pyodide/pgws')");
  const mod = pyodide.pyimport("pgws_playground");
  const session = mod.Playground(JSON.stringify(config));
  const python = session.python_version();
  mark("driver");
  return { pyodide, session, python };
}

// Each request's resource entries are plain data: the page cannot see a worker's fetches.
function resources() {
  return performance.getEntriesByType("resource").map((e) => ({
    name: e.name, duration: Math.round(e.duration), start: Math.round(e.startTime), transferSize: e.transferSize, encodedBodySize: e.encodedBodySize,
    decodedBodySize: e.decodedBodySize,
  }));
}

let booted = null;

const OPS = {
  run: ({ session }, sql, args) => session.run(sql, args),
  nearest: ({ session }, lon, lat, limit) => session.nearest(lon, lat, limit),
  runPython: ({ session }, code) => session.run_python(code),
  async python({ pyodide }, code) {
    const value = await pyodide.runPythonAsync(code);
    const text = String(value);
    if (value && typeof value.destroy === "function") value.destroy();
    return text;
  },
};

self.onmessage = (event) => {
  const { id, op, args, config } = event.data;
  if (op === "wasm") {
    compiled(event.data.module);
    return;
  }
  if (op === "boot") {
    booted = boot(config);
    booted.then(
      ({ pyodide, python }) => postMessage({
        type: "ready", python, pyodide: pyodide.version, stages, clock: clock(),
        resources: resources(),
      }),
      (err) => postMessage({ type: "failed", error: String(err) }),
    );
    return;
  }
  queue = queue.then(async () => {
    try {
      if (!booted) throw new Error("the worker was not booted");
      const value = await OPS[op](await booted, ...args);
      postMessage({ type: "result", id, ok: true, value });
    } catch (err) {
      postMessage({ type: "result", id, ok: false, error: String(err) });
    }
  });
};
