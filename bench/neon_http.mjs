// One-shot queries with the real neon() HTTP client through our proxy's /sql, for
// bench/sqlhttp_bench.py. Env: NEON_JS_DIR (a folder whose node_modules holds the driver),
// DSN, SQL_URL, N, LON, LAT. Prints one JSON line: wall ms per query (node's fetch keeps the
// connection alive between them; the first is the cold one).
import { createRequire } from 'module';

const require = createRequire(`${process.env.NEON_JS_DIR}/package.json`);
const { neon, neonConfig } = require('@neondatabase/serverless');

neonConfig.fetchEndpoint = process.env.SQL_URL;
const sql = neon(process.env.DSN);
const query = `SELECT id_no, name_en, ST_Y(location::geometry) AS latitude,
  ST_X(location::geometry) AS longitude,
  location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography AS distance
FROM whc_sites ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography LIMIT 10`;

const n = Number(process.env.N || 20);
const out = { wall_ms: [], rows: 0 };
for (let i = 0; i < n + 1; i++) {
  const t0 = performance.now();
  const rows = await sql.query(query, [Number(process.env.LON), Number(process.env.LAT)]);
  out.wall_ms.push(performance.now() - t0);
  out.rows = rows.length;
}
console.log(JSON.stringify(out));
