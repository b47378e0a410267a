import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { natsServerVersion } from '../../tools/nats/nats-server-process';
import { BenchSettings, SizeFigures, cluster, embedded, rawNats } from './modes';
import { SimPool } from './sim-pool';

/**
 * npm run bench:cluster — issue 12's cluster-mode figures (docs/scale-out.md "Figures"), on this machine, in
 * one run and with the same simulators (tools/fleet-sim SimulatedDevice, in several processes):
 *  1. raw NATS MQTT: a 3-node nats-server cluster, no cowroot server, one plain subscriber counting;
 *  2. BROKER=embedded: one server process with its aedes broker (at the sizes one process can hold);
 *  3. BROKER=nats: 3 NATS nodes with JetStream, 2 server replicas, one PostgreSQL.
 * At each size the next devices connect, every device sends BENCH_REPORTS state reports at once (timed until
 * counted, or until all are committed in PostgreSQL), and, for the server modes, one wave is planned and
 * dispatched to all of them (timed until every device has its install command).
 * Env: BENCH_CLUSTER_SIZES (10000,20000,30000), BENCH_EMBEDDED_SIZES (10000), BENCH_REPORTS (3),
 * BENCH_PER_PROCESS (devices per simulator process, 10000), BENCH_DATABASE_URL, BENCH_MODES (raw,embedded,cluster).
 */
const SIZES = (process.env.BENCH_CLUSTER_SIZES ?? '10000,20000,30000').split(',').map(Number);
const EMBEDDED_SIZES = (process.env.BENCH_EMBEDDED_SIZES ?? '10000').split(',').map(Number);
const REPORTS = Number(process.env.BENCH_REPORTS ?? 3);
const PER_PROCESS = Number(process.env.BENCH_PER_PROCESS ?? 10_000);
const MODES = new Set((process.env.BENCH_MODES ?? 'raw,embedded,cluster').split(','));
/** e.g. BENCH_MQTT_CONSUMERS=1,memory: the MQTT sessions' consumers R1 in memory instead of R3 on file */
const MQTT_CONSUMERS = process.env.BENCH_MQTT_CONSUMERS?.split(',');
const root = resolve(__dirname, '../../../..'); // dist/bench/bench/cluster → repository

function openFileLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : '–';
}

function summary(raw: SizeFigures[], emb: SizeFigures[], clu: SizeFigures[]): void {
  const at = (list: SizeFigures[], size: number) => list.find((f) => f.size === size);
  console.log(
    '\nsize    | raw NATS rep/s | embedded rep/s | cluster rep/s | cluster/raw | cluster/embedded | ' +
      'embedded wave s | cluster wave s | cluster/embedded wave',
  );
  for (const size of [...new Set([...raw, ...emb, ...clu].map((f) => f.size))].sort((a, b) => a - b)) {
    const [r, e, c] = [at(raw, size), at(emb, size), at(clu, size)];
    const cell = (v: number | undefined, digits = 0) => (v === undefined ? '–' : v.toFixed(digits));
    console.log(
      [
        String(size).padEnd(7),
        cell(r?.ingestPerSecond).padStart(14),
        cell(e?.ingestPerSecond).padStart(14),
        cell(c?.ingestPerSecond).padStart(13),
        ratio(c?.ingestPerSecond, r?.ingestPerSecond).padStart(11),
        ratio(c?.ingestPerSecond, e?.ingestPerSecond).padStart(16),
        cell(e?.dispatchSeconds, 2).padStart(15),
        cell(c?.dispatchSeconds, 2).padStart(14),
        ratio(c?.dispatchSeconds, e?.dispatchSeconds).padStart(21),
      ].join(' | '),
    );
  }
  for (const [mode, list] of [
    ['raw', raw],
    ['embedded', emb],
    ['cluster', clu],
  ] as const) {
    for (const f of list.filter((x) => x.lost > 0 || x.reconnects > 0))
      console.log(`${mode} ${f.size}: ${f.lost} reports lost, ${f.resent} resent, ${f.reconnects} reconnects`);
  }
  // how the cluster's costs grow: each size against the smallest, beside the growth of the work itself
  const [first] = clu;
  for (const f of clu.slice(1)) {
    console.log(
      `cluster ${f.size} / ${first.size}: work ×${(f.size / first.size).toFixed(2)}, ` +
        `wave time ×${ratio(f.dispatchSeconds, first.dispatchSeconds)}, ` +
        `ingest time ×${ratio(f.size / f.ingestPerSecond, first.size / first.ingestPerSecond)}`,
    );
  }
  console.log(
    JSON.stringify({ bench: 'cluster', nats: natsServerVersion(), reports: REPORTS, raw, embedded: emb, cluster: clu }),
  );
}

async function main(): Promise<void> {
  const largest = Math.max(
    ...(MODES.has('raw') || MODES.has('cluster') ? SIZES : []),
    ...(MODES.has('embedded') ? EMBEDDED_SIZES : []),
  );
  const processes = Math.ceil(largest / PER_PROCESS);
  const limit = openFileLimit();
  console.log(
    `bench:cluster — nats-server ${natsServerVersion()}, sizes ${SIZES.join(', ')} (embedded ${EMBEDDED_SIZES.join(', ')}), ${REPORTS} reports each, ` +
      `simulators in ${processes} processes (open files per process: ${limit})` +
      (MQTT_CONSUMERS
        ? `, NATS MQTT consumers ${MQTT_CONSUMERS.join(' ')}`
        : ', NATS MQTT consumers as configured by default'),
  );
  // one socket per device, and an embedded server holds them all in one process
  if (PER_PROCESS > limit - 500) throw new Error(`BENCH_PER_PROCESS ${PER_PROCESS} does not fit ulimit -n ${limit}`);
  for (const size of EMBEDDED_SIZES) {
    if (size > limit - 500)
      throw new Error(`embedded size ${size} cannot be held by one server process (ulimit -n ${limit})`);
  }
  const settings: BenchSettings = {
    sizes: SIZES,
    reports: REPORTS,
    adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    serverMain: join(root, 'dist/apps/server/src/main.js'),
    dataDir: join(root, 'dist/bench-data'),
    mqttConsumers: MQTT_CONSUMERS && {
      replicas: Number(MQTT_CONSUMERS[0]) || undefined,
      memoryStorage: MQTT_CONSUMERS.includes('memory'),
    },
    log: (line) => console.log(line),
  };
  const pool = new SimPool(processes);
  try {
    const raw = MODES.has('raw') ? await rawNats(pool, settings) : [];
    const emb = MODES.has('embedded') ? await embedded(pool, settings, EMBEDDED_SIZES) : [];
    const clu = MODES.has('cluster') ? await cluster(pool, settings) : [];
    summary(raw, emb, clu);
  } finally {
    await pool.close();
  }
}

main().catch((error: Error) => {
  console.error(`bench:cluster failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
