// Drives the real neon() HTTP client of @neondatabase/serverless against our proxy's /sql,
// configured only with its documented neonConfig.fetchEndpoint. Usage: node neon_http.mjs CASE;
// env DSN, SQL_URL. Prints one JSON line with what the case observed; pytest asserts on it.
import { neon, neonConfig } from '@neondatabase/serverless';

neonConfig.fetchEndpoint = process.env.SQL_URL;
const sql = neon(process.env.DSN);

function errorFields(e) {
  const out = { name: e.name, message: e.message };
  for (const k of ['code', 'detail', 'hint', 'position', 'severity', 'where', 'routine',
    'schema', 'table', 'column', 'constraint', 'dataType']) {
    if (e[k] !== undefined) out[k] = e[k];
  }
  return out;
}

const cases = {
  async template() {
    const when = new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
    const rows = await sql`select ${42}::int4 as i, ${2 ** 53 - 1}::int8 as big, ${1.5}::float8 as f,
      ${'ü→ok \'"\\'}::text as s, ${true}::bool as b, ${null}::text as n, ${when}::timestamptz as ts,
      ${Buffer.from([0, 1, 254, 255])}::bytea as bin, ${[1, 2, 3]}::int4[] as arr,
      ${{ a: [1, 'x'], b: null }}::jsonb as j, ${'12.345'}::numeric as num,
      ${'2024-02-29'}::date as d, ${'9f0e4b5c-6d7a-4b8c-9d0e-1f2a3b4c5d6e'}::uuid as u`;
    const r = rows[0];
    return {
      i: r.i, big: r.big, f: r.f, s: r.s, b: r.b, n: r.n, ts: r.ts.toISOString(),
      bin: [...r.bin], arr: r.arr, j: r.j, num: r.num, d: r.d instanceof Date, u: r.u,
    };
  },
  async query() {
    const objects = await sql.query('select $1::int + $2::int as s, $3::text as t', [2, 3, 'x']);
    const arrays = await sql.query('select $1::int as a, $2::text as b', [7, 'y'], { arrayMode: true });
    const full = await sql.query('select n from generate_series(1, $1::int) as n', [3],
      { fullResults: true });
    const cmd = await sql.query('create temp table if not exists t (n int)', [], { fullResults: true });
    return {
      objects, arrays,
      full: { command: full.command, rowCount: full.rowCount, rows: full.rows,
        fields: full.fields.map((f) => [f.name, f.dataTypeID]) },
      cmd: { command: cmd.command, rowCount: cmd.rowCount },
    };
  },
  async arraymode() {
    const s = neon(process.env.DSN, { arrayMode: true, fullResults: true });
    const r = await s`select 1 as one, 'two' as two`;
    return { rows: r.rows, fields: r.fields.map((f) => f.name), rowAsArray: r.rowAsArray };
  },
  async transaction() {
    const [iso, ro, n] = await sql.transaction([
      sql`select current_setting('transaction_isolation') as v`,
      sql`select current_setting('transaction_read_only') as v`,
      sql.query('select count(*)::int as c from generate_series(1, $1::int)', [4]),
    ], { isolationLevel: 'Serializable', readOnly: true });
    let refused = null;
    try {
      await sql.transaction([sql`create temp table x (n int)`], { readOnly: true });
    } catch (e) {
      refused = errorFields(e);
    }
    const plain = await sql.transaction((tx) => [tx`select current_setting('transaction_isolation') as v`]);
    return { iso: iso[0].v, ro: ro[0].v, n: n[0].c, refused, plain: plain[0][0].v };
  },
  async rollback() {
    let error = null;
    try {
      await sql.transaction([
        sql`insert into http_tx_t values (1)`,
        sql`insert into http_tx_t values (2)`,
        sql`select 1 / (select count(*) - 2 from http_tx_t)`,
      ]);
    } catch (e) {
      error = errorFields(e);
    }
    const count = await sql`select count(*)::int as c from http_tx_t`;
    return { error, count: count[0].c };
  },
  async error() {
    const out = {};
    try {
      await sql`select 1 / ${0}::int`;
    } catch (e) {
      out.div = errorFields(e);
    }
    try {
      await sql`select * from no_such_table_here`;
    } catch (e) {
      out.undef = errorFields(e);
    }
    try {
      await sql`insert into http_tx_t values (null)`;
    } catch (e) {
      out.notnull = errorFields(e);
    }
    return out;
  },
};

console.log(JSON.stringify(await cases[process.argv[2]]()));
