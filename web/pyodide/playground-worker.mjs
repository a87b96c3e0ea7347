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

// A memory snapshot of Python after start-up with the driver imported, kept in the browser's
// Cache Storage under the URLs of this Pyodide and this driver bundle (both content-hashed, so a
// new version never meets an old snapshot). On the next visit Python resumes from it instead of
// initialising again (several seconds on a slow machine). Pyodide's snapshot options are marked
// experimental (underscore names): any failure to restore one drops it and starts Python anew.
const SNAPSHOTS = "pgws-playground-snapshots";

async function openSnapshots() {
  try {
    return await caches.open(SNAPSHOTS);
  } catch (err) {  // no Cache Storage here (not a secure context): start Python every time
    return null;
  }
}

async function startPython(loadPyodide, indexURL, store, key) {
  const saved = store && await store.match(key);
  if (saved) {
    try {
      const bytes = new Uint8Array(await saved.arrayBuffer());
      mark("snapshot read");
      return { pyodide: await loadPyodide({ indexURL, _loadSnapshot: bytes }), fresh: false };
    } catch (err) {
      console.warn("playground: the saved Python snapshot did not load, starting anew:", err);
      await store.delete(key);
    }
  }
  return { pyodide: await loadPyodide({ indexURL, _makeSnapshot: Boolean(store) }), fresh: true };
}

async function boot(configUrl) {
  mark("worker");
  const config = await (await fetch(configUrl)).json();
  mark("config");
  progress(1, "Downloading and starting Python (Pyodide)");
  const base = new URL(configUrl);
  const bundleUrl = new URL(config.bundle, base).href;
  const bundle = fetch(bundleUrl).then((r) => {
    if (!r.ok) throw new Error(`driver bundle: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
  const indexURL = new URL(config.pyodide, base).href;
  const { loadPyodide } = await import(indexURL + "pyodide.mjs");
  usePageModule(indexURL + "pyodide.asm.wasm");
  const store = await openSnapshots();
  const key = `${indexURL}python.snapshot?driver=${encodeURIComponent(bundleUrl)}`;
  const { pyodide, fresh } = await startPython(loadPyodide, indexURL, store, key);
  mark("pyodide");
  progress(2, "Loading the driver");
  // Files live outside wasm memory, so a restored Python gets them again too.
  pyodide.unpackArchive(await bundle, "zip", { extractDir: "/home/pyodide/pgws" });
  // A restored Python also reseeds `random`, which would otherwise replay the snapshot's state.
  pyodide.runPython(
    "import random, sys\n" +
    "random.seed()\n" +
    "if '/home/pyodide/pgws' not in sys.path: sys.path.insert(0, '/home/pyodide/pgws')\n" +
    "import pgws_playground");
  const mod = pyodide.pyimport("pgws_playground");
  const session = mod.Playground(JSON.stringify(config));
  const python = session.python_version();
  mark("driver");
  // Taken once the page has heard "ready" and before any request runs (see onmessage): no
  // JavaScript object has reached Python yet, which a snapshot requires.
  const snapshot = () => {
    if (!fresh || !store) return;
    const bytes = pyodide.makeMemorySnapshot();
    store.put(key, new Response(bytes))
      .then(async () => {
        for (const old of await store.keys()) if (old.url !== key) await store.delete(old);
      })
      .catch((err) => console.warn("playground: Python snapshot not saved:", err));
  };
  return { pyodide, session, python, snapshot };
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
    // Requests wait on `booted` too, and their callbacks run after this one (registered
    // first): the snapshot is made before any of them starts.
    booted.then(
      ({ pyodide, python, snapshot }) => {
        postMessage({
          type: "ready", python, pyodide: pyodide.version, stages, clock: clock(),
          resources: resources(),
        });
        try {
          snapshot();
        } catch (err) {
          console.warn("playground: no Python snapshot:", err);
        }
      },
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
