// Drives the real @neondatabase/serverless driver through our proxy, configured only with its
// documented neonConfig options. Usage: node neon.mjs CASE; env DSN, WS_PROXY, PIPELINE.
// Prints one JSON line with what the case observed; pytest makes the assertions.
import { Client, neonConfig } from '@neondatabase/serverless';
import ws from 'ws';

neonConfig.webSocketConstructor = ws;
neonConfig.wsProxy = process.env.WS_PROXY; // "127.0.0.1:PORT/v2": the driver appends ?address=
neonConfig.useSecureWebSocket = false;
neonConfig.forceDisablePgSSL = true;
neonConfig.pipelineConnect = process.env.PIPELINE === 'false' ? false : 'password';

const cases = {
  async query(c) {
    const r = await c.query('select 6 * 7 as answer, current_user as who, $1::text as echo', ['ü→ok']);
    return r.rows[0];
  },
  async transaction(c) {
    await c.query('create temp table t (n int)');
    await c.query('begin');
    await c.query('insert into t values (1), (2)');
    await c.query('rollback');
    await c.query('begin');
    await c.query('insert into t select generate_series(1, 5)');
    const inside = (await c.query('select count(*)::int as n from t')).rows[0].n;
    await c.query('commit');
    const after = (await c.query('select sum(n)::int as s, count(*)::int as n from t')).rows[0];
    return { inside, after };
  },
  async big(c) {
    const r = await c.query(
      "select repeat(chr(97 + (i % 26)), 1048576) as s from generate_series(0, 9) as i");
    let bytes = 0;
    let ok = true;
    r.rows.forEach((row, i) => {
      bytes += row.s.length;
      ok = ok && row.s === String.fromCharCode(97 + (i % 26)).repeat(1048576);
    });
    return { rows: r.rows.length, bytes, ok };
  },
};

const client = new Client(process.env.DSN);
try {
  await client.connect();
  const out = await cases[process.argv[2]](client);
  console.log(JSON.stringify(out));
} finally {
  await client.end();
}
