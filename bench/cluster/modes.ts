import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createUser, encodeUser } from '@nats-io/jwt';
import { DEVICE_JWT_PREFIX, devicePermissions } from '../../apps/server/src/mqtt/nats/broker-token.service';
import { nativeSigningKey } from '../../apps/server/src/mqtt/nats/native-signing-key';
import { ReplicaProcess } from '../../apps/server/src/mqtt/nats/testing/replica-process';
import { startReplicas } from '../../apps/server/src/mqtt/nats/testing/replica-set';
import { freePort } from '@cowroot/testing/free-port';
import { connectService, tempDir } from '../../tools/nats/nats-fixture';
import { NatsDeployment, startNatsDeployment } from '../../tools/nats/nats-deployment';
import { publishBenchRelease } from '../rollout/rollout-dispatch';
import { BenchDatabase, api, benchDevices, provision, until } from './bench-server';
import { SimPool } from './sim-pool';

export interface SizeFigures {
  size: number;
  connectSeconds: number;
  /** reports per second, from the first publish until the last one is counted (raw) or committed (server) */
  ingestPerSecond: number;
  /** create call until every device of the wave has received its install command */
  dispatchSeconds?: number;
  /** the create call (plan) alone */
  planSeconds?: number;
  /** resident memory of the NATS nodes (varz mem), MiB */
  natsMiB?: number;
  /** reports of the burst that never arrived (raw: never counted; server: never in PostgreSQL) */
  lost: number;
  /** reports the simulators sent again (no PUBACK before NATS closed their connection, or in time) */
  resent: number;
  /** connects after a connection NATS closed or a failed attempt, during this size's connect and burst */
  reconnects: number;
}

export interface BenchSettings {
  sizes: number[];
  reports: number;
  adminUrl: string;
  serverMain: string;
  /** mqtt.consumer_replicas / consumer_memory_storage of the NATS nodes; default nats-server's (R3 on file here) */
  mqttConsumers?: { replicas?: number; memoryStorage?: boolean };
  dataDir: string;
  log: (line: string) => void;
}

const perSecond = (reports: number, seconds: number) => reports / seconds;

const losses = (f: SizeFigures) => `${f.lost} lost, ${f.resent} resent, ${f.reconnects} reconnects`;

/**
 * Waits until `count()` reaches `expected` or `timeoutMs` passed, and returns the last count: reports still
 * missing then are lost (every simulator repeats an unacknowledged report until the publish deadline).
 */
async function settle(count: () => Promise<number>, expected: number, timeoutMs: number): Promise<number> {
  return until(
    'reports arrive',
    async () => {
      const n = await count();
      return n >= expected ? expected : null;
    },
    timeoutMs,
    50,
  ).catch(() => count().then((n) => Math.min(n, expected)));
}

/** What the nodes said about the devices they closed: the only account of why reports went missing. */
function logNodeTails(nats: NatsDeployment | undefined, s: BenchSettings): void {
  for (const node of nats?.nodes ?? []) s.log(`${node.options.name} log tail:\n${node.output.slice(-3000)}`);
}

async function natsMemoryMiB(nats: NatsDeployment): Promise<number> {
  const mem = await Promise.all(nats.nodes.map((n) => n.monitor<{ mem: number }>('varz').then((v) => v.mem)));
  return mem.reduce((a, b) => a + b, 0) / 2 ** 20;
}

/**
 * The baseline: the same simulators on the same 3-node cluster, no cowroot server, one plain NATS
 * subscriber counting the state reports. Devices get their JWT from the bench (what the server would issue).
 */
export async function rawNats(pool: SimPool, s: BenchSettings): Promise<SizeFigures[]> {
  const tmp = tempDir('cowroot-cbench-raw-');
  const nats = await startNatsDeployment(tmp.dir, 3, s.mqttConsumers);
  const counter = await connectService(nats.nodes[0].clientUrl, await nats.trust.issueServiceUser('counter'));
  // distinct (device, seq): a report a simulator sent again after a reconnect may arrive twice
  const seen = new Set<string>();
  const subscription = counter.subscribe('cowroot.v1.devices.*.state', {
    callback: (_error, msg) => void seen.add(`${msg.subject} ${(msg.json() as { seq: number }).seq}`),
  });
  await counter.flush();
  const figures: SizeFigures[] = [];
  // the JWT the server would issue (its permissions, signed natively as the server does), with one user key
  // for all: the baseline has no database to keep a key per device in
  const signer = nativeSigningKey(new TextDecoder().decode(nats.trust.account.getSeed()));
  const userKey = createUser().getPublicKey();
  try {
    let from = 0;
    for (const size of s.sizes) {
      const devices = benchDevices(from, size, s.sizes);
      for (const device of devices)
        device.password = await encodeUser(
          `${DEVICE_JWT_PREFIX}${device.id}`,
          userKey,
          signer,
          devicePermissions(device.id),
        );
      await pool.add(devices, nats.mqttUrls);
      const connect = await pool.connect();
      from = size;
      const before = seen.size;
      const started = Date.now();
      const burst = await pool.publish(s.reports);
      const expected = size * s.reports;
      const arrived = await settle(async () => seen.size - before, expected, 120_000);
      if (arrived < expected || burst.failed > 0) logNodeTails(nats, s);
      const seconds = (Date.now() - started) / 1000;
      const f: SizeFigures = {
        size,
        connectSeconds: connect.seconds,
        ingestPerSecond: perSecond(arrived, seconds),
        natsMiB: await natsMemoryMiB(nats),
        lost: expected - arrived,
        resent: burst.resent,
        reconnects: connect.reconnects + burst.reconnects,
      };
      s.log(
        `raw NATS MQTT, ${size} devices: connected +${devices.length} in ${connect.seconds.toFixed(1)} s; ` +
          `${f.ingestPerSecond.toFixed(0)} reports/s counted; ${losses(f)}; NATS nodes ${f.natsMiB!.toFixed(0)} MiB`,
      );
      figures.push(f);
    }
  } finally {
    subscription.unsubscribe();
    await counter.close().catch(() => undefined);
    await pool.stopDevices();
    await nats.stop();
    tmp.remove();
  }
  return figures;
}

/**
 * One wave over the devices tagged upto-<size>: the create call until every one of them answered its install
 * command with `accepted`; then the wave is left to finish (the simulators fail the download, so the
 * devices are free for the next, larger wave) and the rollout is canceled.
 */
async function timeWave(
  pool: SimPool,
  db: BenchDatabase,
  httpUrl: () => string,
  token: string,
  size: number,
): Promise<{ dispatchSeconds: number; planSeconds: number }> {
  const before = await pool.accepted();
  const started = Date.now();
  const rollout = await api(httpUrl(), token, 'POST', '/rollouts', {
    name: `cluster bench ${size}`,
    release: { name: 'bench-os', version: '1.0.0' },
    selector: { tags: [`upto-${size}`] },
    waves: [{ percent: 100, timeoutSeconds: 3600 }],
    rebootMode: 'never',
  });
  const planSeconds = (Date.now() - started) / 1000;
  await until(
    `${size} devices got their install command`,
    async () => ((await pool.accepted()) - before >= size ? true : null),
    600_000,
    50,
  );
  const dispatchSeconds = (Date.now() - started) / 1000;
  await until(
    'every execution of the wave settled',
    async () => {
      const [row] = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 AND state IN ('failed', 'canceled', 'timed-out')`,
        [rollout.id],
      );
      return row.n >= size ? true : null;
    },
    600_000,
    500,
  );
  await api(httpUrl(), token, 'POST', `/rollouts/${String(rollout.id)}/cancel`).catch(() => undefined);
  return { dispatchSeconds, planSeconds };
}

/**
 * The cowroot server's part, embedded or cluster: per size, provision and connect the next devices, a
 * burst of `reports` state reports from every device (timed until the database holds every one, each
 * committed before its acknowledgement), then one timed wave.
 */
async function serverSizes(
  pool: SimPool,
  s: BenchSettings,
  sizes: number[],
  target: {
    httpUrls: () => string[];
    mqttUrls: string[];
    token: string;
    db: BenchDatabase;
    tokens: boolean;
    label: string;
    nats?: NatsDeployment;
  },
): Promise<SizeFigures[]> {
  const figures: SizeFigures[] = [];
  const httpUrl = () => target.httpUrls()[0];
  await publishBenchRelease({ httpUrl: httpUrl(), token: target.token });
  let from = 0;
  for (const size of sizes) {
    const devices = benchDevices(from, size, sizes);
    // embedded: the credential is the MQTT password; cluster: a broker JWT fetched against it
    if (!target.tokens) for (const device of devices) device.password = device.credential;
    await provision(httpUrl(), target.token, devices);
    await pool.add(devices, target.mqttUrls, target.tokens ? target.httpUrls() : undefined);
    const connect = await pool.connect();
    from = size;
    const stored = async () => {
      const [row] = await target.db.query<{ n: string }>(
        `SELECT coalesce(sum(state_seq), 0)::bigint AS n FROM devices WHERE id LIKE 'cb-%'`,
      );
      return Number(row.n);
    };
    const before = await stored();
    const started = Date.now();
    const burst = await pool.publish(s.reports);
    // state_seq is each device's last stored seq: the burst's reports are in PostgreSQL when the sum of
    // them reaches the simulators' (a report whose later one arrived counts as stored: state is last-wins)
    const expected = burst.seqSum - before;
    const arrived = await settle(async () => (await stored()) - before, expected, 600_000);
    if (arrived < expected || burst.failed > 0) logNodeTails(target.nats, s);
    const seconds = (Date.now() - started) / 1000;
    const wave = await timeWave(pool, target.db, httpUrl, target.token, size);
    const f: SizeFigures = {
      size,
      connectSeconds: connect.seconds,
      ingestPerSecond: perSecond(arrived, seconds),
      ...wave,
      natsMiB: target.nats ? await natsMemoryMiB(target.nats) : undefined,
      lost: expected - arrived,
      resent: burst.resent,
      reconnects: connect.reconnects + burst.reconnects,
    };
    s.log(
      `${target.label}, ${size} devices: connected +${devices.length} in ${connect.seconds.toFixed(1)} s; ` +
        `${f.ingestPerSecond.toFixed(0)} reports/s committed; ${losses(f)}; wave plan + dispatch ${wave.dispatchSeconds.toFixed(2)} s ` +
        `(create call ${wave.planSeconds.toFixed(2)} s)` +
        (f.natsMiB ? `; NATS nodes ${f.natsMiB.toFixed(0)} MiB` : ''),
    );
    figures.push(f);
  }
  return figures;
}

/** BROKER=embedded: one server process with its aedes broker, as `npm start` runs it. */
export async function embedded(pool: SimPool, s: BenchSettings, sizes: number[]): Promise<SizeFigures[]> {
  const db = await BenchDatabase.create(s.adminUrl);
  const token = `cbench-${randomBytes(8).toString('hex')}`;
  const [httpPort, mqttPort] = [await freePort(), await freePort()];
  const server = new ReplicaProcess(
    'cbench-embedded',
    httpPort,
    {
      DATABASE_URL: db.url,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(httpPort),
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: String(mqttPort),
      COWROOT_ADMIN_TOKEN: token,
      DATA_DIR: join(s.dataDir, db.name),
      LOG_LEVEL: 'warn',
    },
    s.serverMain,
  );
  try {
    await server.start();
    return await serverSizes(pool, s, sizes, {
      httpUrls: () => [server.httpUrl],
      mqttUrls: [`mqtt://127.0.0.1:${mqttPort}`],
      token,
      db,
      tokens: false,
      label: 'embedded',
    });
  } finally {
    await pool.stopDevices();
    await server.stop();
    await db.drop();
  }
}

/** BROKER=nats: 3 NATS nodes with JetStream and 2 server replicas on one PostgreSQL (the cluster-spec's setup). */
export async function cluster(pool: SimPool, s: BenchSettings): Promise<SizeFigures[]> {
  const tmp = tempDir('cowroot-cbench-cluster-');
  const nats = await startNatsDeployment(tmp.dir, 3, s.mqttConsumers);
  const db = await BenchDatabase.create(s.adminUrl);
  const token = `cbench-${randomBytes(8).toString('hex')}`;
  const credentialKey = randomBytes(32).toString('hex');
  const replicas: ReplicaProcess[] = [];
  try {
    await startReplicas(replicas, {
      names: ['replica-a', 'replica-b'],
      natsEnv: nats.serverEnv,
      databaseUrl: db.url,
      dataDir: tmp.dir,
      adminToken: token,
      credentialKey,
      main: s.serverMain,
    });
    return await serverSizes(pool, s, s.sizes, {
      httpUrls: () => replicas.map((r) => r.httpUrl),
      mqttUrls: nats.mqttUrls,
      token,
      db,
      tokens: true,
      label: 'cluster (3 NATS, 2 replicas)',
      nats,
    });
  } catch (error) {
    for (const replica of replicas) s.log(`${replica.name} log tail:\n${replica.output.slice(-2000)}`);
    throw error;
  } finally {
    await pool.stopDevices();
    await Promise.all(replicas.map((replica) => replica.stop()));
    await nats.stop();
    await db.drop();
    tmp.remove();
  }
}
