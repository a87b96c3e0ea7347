// Connect + first result with the real @neondatabase/serverless driver, N times, for
// bench/connect_bench.py. Env: NEON_JS_DIR (a folder whose node_modules holds the driver and
// ws), DSN, WS_PROXY, PIPELINE ("password" or "false"), N. Prints one JSON line.
import { createRequire } from 'module';

const require = createRequire(`${process.env.NEON_JS_DIR}/package.json`);
const { Client, neonConfig } = require('@neondatabase/serverless');
const ws = require('ws');

neonConfig.webSocketConstructor = ws;
neonConfig.wsProxy = process.env.WS_PROXY;
neonConfig.useSecureWebSocket = false;
neonConfig.forceDisablePgSSL = true;
neonConfig.pipelineConnect = process.env.PIPELINE === 'false' ? false : 'password';

const n = Number(process.env.N || 20);
const out = { wall_ms: [], cpu_ms: [] };
for (let i = 0; i < n + 2; i++) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const client = new Client(process.env.DSN);
  await client.connect();
  await client.query('select 1');
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  await client.end();
  if (i >= 2) { // two warm-ups: module loading and JIT are not what is measured
    out.wall_ms.push(wall);
    out.cpu_ms.push((cpu.user + cpu.system) / 1000);
  }
}
console.log(JSON.stringify(out));
