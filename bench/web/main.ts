import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readdirSync, readFileSync } from 'node:fs';
import { Client } from 'pg';
import { chromium } from 'playwright-core';
import { freePort } from '@cowroot/testing/free-port';
import { startNode, stopChild } from '../rollout/child-process';

/**
 * npm run bench:web — the dashboard's figures (docs/dashboard.md "Performance"), on this machine:
 *  1. the JS bundle's gzip size;
 *  2. the rollout page with BENCH_EXECUTIONS (10,000) executions: time from navigation to first useful paint
 *     (waves' bars and the first device row drawn), against its bare API calls from Node in the same run;
 *  3. the device list at BENCH_DEVICES (100,000) devices: first page and next page in the browser, against
 *     the bare GET /api/v1/devices.
 * The server runs built (dist/) in its own process on a fresh PostgreSQL database (BENCH_DATABASE_URL,
 * default postgres://postgres@127.0.0.1:5432/postgres); the fleet is written by SQL, not simulated.
 */
const DEVICES = Number(process.env.BENCH_DEVICES ?? 100_000);
const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = resolve(__dirname, '../../../..'); // dist/bench/bench/web → repository

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ms = (value: number) => `${value.toFixed(1)} ms`;

function bundleGzip(): { js: number; css: number } {
  const dir = join(root, 'dist/apps/web/assets');
  const size = (ext: string) =>
    readdirSync(dir)
      .filter((file) => file.endsWith(ext))
      .reduce((sum, file) => sum + gzipSync(readFileSync(join(dir, file)), { level: 9 }).length, 0);
  return { js: size('.js'), css: size('.css') };
}

const STATES = [
  'confirmed',
  'confirmed',
  'confirmed',
  'downloading',
  'queued',
  'queued',
  'failed',
  'rejected-by-health-check',
];

async function seed(url: string): Promise<string> {
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(
      `INSERT INTO devices (id, tags, provisioned_by, online, booted_release, booted_snapshot, last_seen_at)
       SELECT 'dev-' || lpad(i::text, 6, '0'), ARRAY['fleet', 'site-' || (i % 20)], 'bench', i % 3 <> 0,
              CASE WHEN i % 4 = 0 THEN 'os@1' ELSE 'os@2' END, 's' || (i % 4), now() - (i % 600) * interval '1 second'
         FROM generate_series(1, $1) i`,
      [DEVICES],
    );
    const id = randomUUID();
    await db.query(
      `INSERT INTO rollouts (id, name, release_id, release_name, release_version, selector, abort_rules, status, status_reason,
                             current_wave, created_by, created_by_name)
       VALUES ($1, 'bench rollout', $2, 'os', '3', '{"tags":["fleet"]}', '[{"kind":"any","thresholdPercent":30,"minExecuted":10,"action":"pause"}]',
               'paused', 'bench: held still', 2, 'bench', 'bench')`,
      [id, randomUUID()],
    );
    for (const [index, kind, value] of [
      [0, 'count', 10],
      [1, 'percent', 25],
      [2, 'percent', 100],
    ] as const) {
      await db.query(
        `INSERT INTO rollout_waves (rollout_id, index, size_kind, size_value, success_percent, timeout_seconds, status)
         VALUES ($1, $2, $3, $4, 90, 600, $5)`,
        [id, index, kind, value, index < 2 ? 'succeeded' : 'running'],
      );
    }
    await db.query(
      `INSERT INTO rollout_executions (id, rollout_id, wave_index, device_id, order_key, state, failure_reason)
       SELECT gen_random_uuid(), $1, CASE WHEN i <= 10 THEN 0 WHEN i <= $2 / 4 THEN 1 ELSE 2 END,
              'dev-' || lpad(i::text, 6, '0'), i, ($3::text[])[1 + i % 8],
              CASE WHEN i % 8 = 7 THEN 'health check network failed: ping 10.0.0.1: timeout' END
         FROM generate_series(1, $2) i`,
      [id, EXECUTIONS, STATES],
    );
    return id;
  } finally {
    await db.end();
  }
}

async function main(): Promise<void> {
  const name = `cowroot_webbench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'cowroot-webbench-'));
  const token = `bench-admin-${randomBytes(8).toString('hex')}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const { child } = await startNode(
    [join(root, 'dist/apps/server/src/main.js')],
    {
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: '0',
      DATABASE_URL: url.toString(),
      DATA_DIR: dataDir,
      COWROOT_ADMIN_TOKEN: token,
      WEB_DIR: join(root, 'dist/apps/web'),
      LOG_LEVEL: 'log',
    },
    (line) => (line.includes('REST API on') ? true : undefined),
  );
  const userDataDir = await mkdtemp(join(tmpdir(), 'cowroot-webbench-chromium-'));
  try {
    const rolloutId = await seed(url.toString());
    const bundle = bundleGzip();
    console.log(`bundle: JS ${(bundle.js / 1024).toFixed(1)} KiB gzip, CSS ${(bundle.css / 1024).toFixed(1)} KiB gzip`);

    const auth = { Authorization: `Bearer ${token}` };
    const timeApi = async (paths: string[]) => {
      const started = performance.now();
      await Promise.all(paths.map(async (path) => (await fetch(`${base}${path}`, { headers: auth })).arrayBuffer()));
      return performance.now() - started;
    };
    const rolloutApi = [`/api/v1/rollouts/${rolloutId}`, `/api/v1/rollouts/${rolloutId}/executions?limit=100`];
    const devicesApi = ['/api/v1/devices?limit=50'];
    await timeApi(rolloutApi);
    await timeApi(devicesApi);

    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    const page = await context.newPage();
    const login = await page.request.post(`${base}/api/v1/session`, { data: { token } });
    if (!login.ok()) throw new Error(`login failed: HTTP ${login.status()}`);

    /** ms from navigation start until `selector` is drawn, read by the page's own clock */
    const paint = async (path: string, selectors: string[]) => {
      await page.goto(`${base}${path}`);
      for (const selector of selectors) await page.waitForSelector(selector);
      // a string: the page's DOM types are not this Node program's
      return page.evaluate<number>('new Promise((done) => requestAnimationFrame(() => done(performance.now())))');
    };
    const rolloutPaint: number[] = [];
    const rolloutBare: number[] = [];
    const listPaint: number[] = [];
    const listNext: number[] = [];
    const listBare: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      rolloutBare.push(await timeApi(rolloutApi));
      rolloutPaint.push(await paint(`/rollouts/${rolloutId}`, ['.wave .bar .seg', 'section table tbody tr']));
      listBare.push(await timeApi(devicesApi));
      listPaint.push(await paint('/devices', ['tbody tr:nth-child(50)']));
      const first = await page.locator('tbody tr td:nth-child(2)').first().textContent();
      const started = Date.now();
      await page.getByRole('button', { name: 'Next →' }).click();
      // a locator, not waitForFunction with a string: that would be eval, which the page's CSP refuses
      await page
        .locator('tbody tr:first-child td:nth-child(2)')
        .filter({ hasNotText: first ?? '' })
        .waitFor();
      listNext.push(Date.now() - started);
    }
    await context.close();
    const [rp, rb, lp, ln, lb] = [rolloutPaint, rolloutBare, listPaint, listNext, listBare].map(median);
    console.log(
      `rollout page, ${EXECUTIONS} executions: first useful paint ${ms(rp)} (navigation → bars and first row)`,
    );
    console.log(`  baseline: its two API calls from Node ${ms(rb)} → page/baseline ${(rp / rb).toFixed(1)}×`);
    console.log(`device list, ${DEVICES} devices: first page drawn ${ms(lp)}, next page ${ms(ln)}`);
    console.log(
      `  baseline: GET /api/v1/devices?limit=50 from Node ${ms(lb)} → next page/baseline ${(ln / lb).toFixed(1)}×`,
    );
    console.log(`(medians of ${RUNS} runs)`);
  } finally {
    await stopChild(child);
    await rm(userDataDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
