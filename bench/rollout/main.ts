import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { DeviceChannel, PROTOCOL_VERSION, deviceTopic, encodeMessage } from '@cowroot/protocol';
import { freePort } from '@cowroot/testing/free-port';
import { FleetSimulator } from '../../tools/fleet-sim/src/fleet-simulator';
import { factorySnapshot } from '../../tools/fleet-sim/src/simulated-device';
import { startNode, stopChild } from './child-process';
import { connectBareFleet } from './connect-storm';
import { startCpuMeter } from './cpu-usage';
import { LoadClient, connectClients, publishLoad } from './publish-load';
import { benchOfflineDispatch, benchRolloutDispatch, publishBenchRelease } from './rollout-dispatch';

/**
 * npm run bench:rollout — the rollout benchmark (docs/rollouts.md "Performance"), on this machine:
 *  1. raw aedes QoS 1 throughput (bare broker in its own process): the baseline;
 *  2. the cowroot server (own process, real PostgreSQL) with DEVICES simulated devices connected:
 *     state reports per second, each acknowledged only after it is committed, and publish→commit p50/p99,
 *     once as a burst (every device at once, like the baseline) and once offered at BENCH_RATE per second;
 *  3. time to plan and dispatch one wave to every device;
 *  connect: the time for every device to connect (CONNECT, SUBSCRIBE, presence, state report), to bare aedes
 *  and to cowroot, with the same concurrency, and the ratio (issue 12, "Reconnect storm").
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), BENCH_DEVICES (10000),
 * BENCH_REPORTS (reports per device, 10), BENCH_RATE (offered reports per second in the paced run, 5000),
 * BENCH_CONNECT_CONCURRENCY (connects in flight at once, both brokers; 200, fleet-sim's default).
 */
const DEVICES = Number(process.env.BENCH_DEVICES ?? 10_000);
/**
 * 10, not 3: a burst of 3 reports from 10,000 devices lasts 2–3 s, about its own ramp (10,000 in flight,
 * p99 ≈ 1 s), and its ratio moved by ±0.07 between two runs of the same code; 10 measure the steady rate.
 */
const REPORTS = Number(process.env.BENCH_REPORTS ?? 10);
const PACED_RATE = Number(process.env.BENCH_RATE ?? 5000);
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Connects in flight at once, to bare aedes and to cowroot; = BENCH_DEVICES is the whole fleet at once. */
const CONNECT_CONCURRENCY = Number(process.env.BENCH_CONNECT_CONCURRENCY ?? 200);
/**
 * Which parts run (comma list): connect, baseline, ingest, dispatch, offline. A part's ratio needs its
 * baseline in the same run; `connect` alone connects the fleet to bare aedes and to cowroot, nothing more.
 */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'connect,baseline,ingest,dispatch,offline').split(','));
/** Offline fleets (provisioned, never connected) whose wave dispatch is timed, to show how its cost grows. */
const OFFLINE_FLEETS = (process.env.BENCH_OFFLINE ?? '10000,15000,100000').split(',').map(Number);
/** When set, the server's stdout goes to this file (where a slow step shows in its log lines). */
const SERVER_LOG = process.env.BENCH_SERVER_LOG;
/** Extra node flags for the server process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where a step goes. */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const root = resolve(__dirname, '../../../..'); // dist/bench/bench/rollout → repository

/**
 * The baselines' state report: a fleet-sim device's (simulated-device.ts publishState, its factory snapshot
 * listed), so raw aedes carries the same bytes per message as cowroot.
 */
function statePayload(deviceId: string, seq: number): Buffer {
  return encodeMessage({
    v: PROTOCOL_VERSION,
    seq,
    sentAt: new Date().toISOString(),
    agentVersion: 'fleet-sim',
    bootedSnapshot: 'factory',
    trialBoot: false,
    fallbackSnapshot: 'factory',
    pendingTrial: null,
    lastTrialResult: null,
    snapshots: [factorySnapshot()],
    health: null,
  });
}

async function baseline(): Promise<{ perSecond: number; p99Ms: number }> {
  const { child, value } = await startNode([join(root, 'bench/rollout/raw-aedes-broker.mjs')], {}, (line) =>
    line.startsWith('{') ? (JSON.parse(line) as { port: number }) : undefined,
  );
  try {
    const specs: LoadClient[] = Array.from({ length: DEVICES }, (_, i) => {
      const id = `raw-${i}`;
      return { id, topic: deviceTopic(id, DeviceChannel.State), payload: (seq) => statePayload(id, seq) };
    });
    const clients = await connectClients(`mqtt://127.0.0.1:${value.port}`, specs);
    const cpu = startCpuMeter('broker', child.pid!);
    const result = await publishLoad(clients, specs, REPORTS);
    console.log(`  raw aedes QoS 1: ${cpu.describe(result.messages, 'report')}`);
    await Promise.all(clients.map((c) => c.endAsync(true)));
    return result;
  } finally {
    await stopChild(child);
  }
}

/** Seconds for DEVICES clients to connect to a bare aedes (own process) as fleet-sim devices connect. */
async function bareConnect(): Promise<number> {
  const { child, value } = await startNode([join(root, 'bench/rollout/raw-aedes-broker.mjs')], {}, (line) =>
    line.startsWith('{') ? (JSON.parse(line) as { port: number }) : undefined,
  );
  const cpu = startCpuMeter('broker', child.pid!);
  try {
    const { clients, seconds } = await connectBareFleet(
      `mqtt://127.0.0.1:${value.port}`,
      DEVICES,
      CONNECT_CONCURRENCY,
      (id) => statePayload(id, 0),
    );
    console.log(`  bare aedes connect: ${cpu.describe(DEVICES, 'device')}`);
    await Promise.all(clients.map((c) => c.endAsync(true)));
    return seconds;
  } finally {
    await stopChild(child);
  }
}

/**
 * The goal's own shape: reports offered at a steady `rate` (spread over the devices in turn) rather than
 * in one burst, each timed from publish to its PUBACK, which the server sends after the commit.
 */
async function pacedIngest(
  fleet: FleetSimulator,
  rate: number,
  total: number,
): Promise<{ perSecond: number; p50Ms: number; p99Ms: number }> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const started = Date.now();
  for (let k = 0; k < total; k++) {
    const due = started + (k * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const device = fleet.devices[k % fleet.devices.length];
    const t0 = process.hrtime.bigint();
    pending.push(device.publishState().then(() => void latencies.push(Number(process.hrtime.bigint() - t0) / 1e6)));
  }
  await Promise.all(pending);
  const seconds = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / seconds,
    p50Ms: latencies[Math.floor(latencies.length * 0.5)],
    p99Ms: latencies[Math.floor(latencies.length * 0.99)],
  };
}

/** State reports: a burst from every device at once (the baseline's shape), then a paced run. */
async function ingest(
  fleet: FleetSimulator,
  dbUrl: string,
  raw: { perSecond: number } | null,
  serverPid: number,
): Promise<void> {
  const latencies: number[] = [];
  const cpu = startCpuMeter('server', serverPid);
  const t = Date.now();
  // every device at once, one report in flight each: the same shape as the raw baseline
  await fleet.forAll(async (device) => {
    for (let i = 0; i < REPORTS; i++) {
      const t0 = process.hrtime.bigint();
      await device.publishState();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }, DEVICES);
  const seconds = (Date.now() - t) / 1000;
  const cpuSpent = cpu.describe(latencies.length, 'report');
  latencies.sort((a, b) => a - b);
  const perSecond = latencies.length / seconds;
  const p99 = latencies[Math.floor(latencies.length * 0.99)];
  const p50 = latencies[Math.floor(latencies.length * 0.5)];
  const check = new Client({ connectionString: dbUrl });
  await check.connect();
  // connect() sent seq 0; the load sent 1..REPORTS: every device must hold its last one
  const committed = await check.query(`SELECT count(*)::int AS n FROM devices WHERE state_seq = $1`, [REPORTS]);
  // a report's UPDATE that is not HOT (heap-only tuple) also writes a new entry into every index of devices
  const updates = await check.query(
    `SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = 'devices'`,
  );
  await check.end();
  console.log(
    `cowroot ingest, burst:       ${perSecond.toFixed(0)} reports/s, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms publish→commit; ` +
      `${committed.rows[0].n}/${DEVICES} devices hold their last report`,
  );
  console.log(`  cowroot ingest, burst: ${cpuSpent}`);
  const { updated, hot } = updates.rows[0] as { updated: number; hot: number };
  console.log(`  devices rows updated since the server started: ${updated}, of them HOT ${hot}`);
  if (raw) {
    console.log(
      `ratio ingest / raw aedes:    ${(perSecond / raw.perSecond).toFixed(3)} (goal: ≥ 5000 reports/s, p99 ≤ 1000 ms)`,
    );
  }

  const paced = await pacedIngest(fleet, PACED_RATE, REPORTS * DEVICES);
  console.log(
    `cowroot ingest at ${PACED_RATE}/s offered: ${paced.perSecond.toFixed(0)} reports/s committed, ` +
      `p50 ${paced.p50Ms.toFixed(1)} ms, p99 ${paced.p99Ms.toFixed(1)} ms publish→commit (goal: p99 ≤ 1000 ms)`,
  );
}

async function main(): Promise<void> {
  console.log(`bench:rollout — ${DEVICES} devices, ${REPORTS} state reports each`);
  // other jobs on the machine move the absolute figures: compare ratios measured in the same run
  const load = (): string =>
    loadavg()
      .map((n) => n.toFixed(2))
      .join(', ');
  console.log(`load average at start: ${load()}`);
  const bareConnectSeconds = PARTS.has('connect') ? await bareConnect() : null;
  if (bareConnectSeconds !== null)
    console.log(
      `bare aedes connect (baseline): ${DEVICES} clients in ${bareConnectSeconds.toFixed(1)} s, ` +
        `${CONNECT_CONCURRENCY} in flight (CONNECT, SUBSCRIBE, 2 QoS 1 publishes each)`,
    );
  const raw = PARTS.has('baseline') ? await baseline() : null;
  if (raw)
    console.log(`raw aedes QoS 1 (baseline):   ${raw.perSecond.toFixed(0)} msg/s, p99 ${raw.p99Ms.toFixed(1)} ms`);

  const dbName = `cowroot_bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const mqttPort = await freePort();
  const token = `bench-admin-${randomBytes(8).toString('hex')}`;
  const server = await startNode(
    [...SERVER_NODE_ARGS, join(root, 'dist/apps/server/src/main.js')],
    {
      DATABASE_URL: dbUrl.toString(),
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: String(mqttPort),
      COWROOT_ADMIN_TOKEN: token,
      DATA_DIR: join(root, 'dist/bench-data', dbName),
      LOG_LEVEL: 'log',
    },
    (line) => {
      if (SERVER_LOG) appendFileSync(SERVER_LOG, line + '\n');
      const http = /REST API on http:\/\/[^:]+:(\d+)/.exec(line);
      return http ? Number(http[1]) : undefined;
    },
  );
  let fleet: FleetSimulator | null = null;
  try {
    const httpUrl = `http://127.0.0.1:${server.value}`;
    if (PARTS.has('ingest') || PARTS.has('dispatch') || PARTS.has('connect')) {
      fleet = new FleetSimulator({
        httpUrl,
        token,
        mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
        count: DEVICES,
        tags: ['bench'],
        idPrefix: 'bench',
        connectConcurrency: CONNECT_CONCURRENCY,
      });
      let t = Date.now();
      await fleet.provision();
      console.log(`provisioned ${DEVICES} devices in ${((Date.now() - t) / 1000).toFixed(1)} s (bulk API)`);
      t = Date.now();
      const cpu = startCpuMeter('server', server.child.pid!);
      await fleet.connectAll();
      const connectSeconds = (Date.now() - t) / 1000;
      console.log(`connected ${DEVICES} simulated devices in ${connectSeconds.toFixed(1)} s`);
      console.log(`  cowroot connect: ${cpu.describe(DEVICES, 'device')}`);
      if (bareConnectSeconds !== null) {
        console.log(
          `cowroot connect:              ${DEVICES} devices in ${connectSeconds.toFixed(1)} s, ${CONNECT_CONCURRENCY} in flight; ` +
            `ratio to bare aedes ${(connectSeconds / bareConnectSeconds).toFixed(2)} (goal: ≤ 10 s)`,
        );
      }
    }
    if (fleet && PARTS.has('ingest')) await ingest(fleet, dbUrl.toString(), raw, server.child.pid!);
    if (PARTS.has('dispatch') || PARTS.has('offline')) await publishBenchRelease({ httpUrl, token });
    if (fleet && PARTS.has('dispatch')) {
      const dispatch = await benchRolloutDispatch({ httpUrl, token, fleet, devices: DEVICES });
      console.log(
        `plan + dispatch of a ${DEVICES}-device wave: ${dispatch.seconds.toFixed(2)} s (goal ≤ 10 s), ` +
          `of which the create call (plan) ${dispatch.planSeconds.toFixed(2)} s`,
      );
    }
    if (PARTS.has('offline')) {
      const times = new Map<number, number>();
      // a first wave warms the JIT and the database's caches, so the sizes compared below are alike
      const warmUp = await benchOfflineDispatch({ httpUrl, token, dbUrl: dbUrl.toString(), count: 1000 });
      console.log(`offline fleet of 1000 (warm-up): plan + dispatch ${warmUp.seconds.toFixed(2)} s`);
      for (const count of OFFLINE_FLEETS) {
        const run = await benchOfflineDispatch({ httpUrl, token, dbUrl: dbUrl.toString(), count });
        times.set(count, run.seconds);
        console.log(
          `offline fleet of ${count}: plan + dispatch ${run.seconds.toFixed(2)} s ` +
            `(${((run.seconds * 1e6) / count).toFixed(0)} µs/device; create call ${run.planSeconds.toFixed(2)} s; ` +
            `provisioned in ${run.provisionSeconds.toFixed(1)} s)`,
        );
      }
      const [small, large] = [times.get(10_000), times.get(15_000)];
      if (small && large) {
        console.log(`ratio 15k / 10k offline dispatch: ${(large / small).toFixed(2)} (goal ≤ 1.6; linear = 1.5)`);
      }
      const fleet100k = times.get(100_000);
      if (fleet100k) console.log(`100k offline fleet dispatched in ${fleet100k.toFixed(1)} s (goal ≤ 60 s)`);
    }
  } finally {
    await fleet?.stopAll().catch(() => undefined);
    await stopChild(server.child);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    console.log(`load average at end: ${load()}`);
  }
}

main().catch((error: Error) => {
  console.error(`bench:rollout failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
