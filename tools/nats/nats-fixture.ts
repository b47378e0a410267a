// Small helpers shared by the NATS verification specs: connect an MQTT device with its bearer JWT, connect a
// server-side nats.js client, push an account JWT to the resolver, wait for an event with a timeout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { connect, headers, jwtAuthenticator, type NatsConnection, type PubAck } from 'nats';
import { NatsServerProcess, type MqttConsumerOptions } from './nats-server-process';
import type { IssuedUser, NatsTrust } from './nats-trust';

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startCluster(
  trust: NatsTrust,
  dir: string,
  size: number,
  mqttConsumers?: MqttConsumerOptions,
): Promise<NatsServerProcess[]> {
  const ports = [];
  for (let i = 0; i < size; i++) ports.push(await NatsServerProcess.allocatePorts());
  const routes = size > 1 ? ports.map((p) => p.cluster) : undefined;
  const nodes = ports.map(
    (p, i) =>
      new NatsServerProcess({
        name: `n${i + 1}`,
        dir: join(dir, `n${i + 1}`),
        trust,
        ports: p,
        routes,
        mqttStreamReplicas: size > 1 ? size : undefined,
        mqttConsumers,
      }),
  );
  await Promise.all(nodes.map((n) => n.start(40000)));
  if (size > 1) await waitForJetStream(trust, nodes);
  return nodes;
}

/**
 * Every node's /healthz can say ok while a fresh cluster still elects its JetStream meta leader; a stream
 * created then fails with `NatsError: 503` (seen in CI, on the cluster spec's first stream). Resolves once
 * every node names the same meta leader of `nodes.length` peers and answers the account's $JS.API.INFO.
 */
async function waitForJetStream(trust: NatsTrust, nodes: NatsServerProcess[], timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const user = await trust.issueServiceUser('cluster-probe');
  let last = '';
  while (Date.now() < deadline) {
    try {
      const metas = await Promise.all(
        nodes.map((n) => n.monitor<{ meta_cluster?: { leader?: string; cluster_size?: number } }>('jsz')),
      );
      const leaders = new Set(metas.map((m) => m.meta_cluster?.leader ?? ''));
      const sizes = metas.map((m) => m.meta_cluster?.cluster_size ?? 0);
      if (leaders.has('') || leaders.size > 1 || sizes.some((s) => s !== nodes.length))
        throw new Error(`meta leaders ${[...leaders].join(',') || 'none'}, cluster sizes ${sizes.join(',')}`);
      for (const node of nodes) {
        const nc = await connectService(node.clientUrl, user);
        try {
          await (await nc.jetstreamManager()).getAccountInfo();
        } finally {
          await nc.close();
        }
      }
      return;
    } catch (error) {
      last = (error as Error).message;
      await sleep(200);
    }
  }
  throw new Error(`JetStream of the ${nodes.length}-node cluster not ready after ${timeoutMs} ms: ${last}`);
}

const inboxes = new WeakMap<MqttClient, { topic: string; payload: string }[]>();
const sessionPresent = new WeakMap<MqttClient, boolean>();

/** CONNACK's session-present flag (MQTT-3.2.2-2) of the last connect. */
export function hadSession(client: MqttClient): boolean {
  return sessionPresent.get(client) ?? false;
}

/**
 * MQTT 3.1.1 connect with the device's bearer JWT as password; resolves on CONNACK or rejects with its code.
 * Messages are recorded from the first byte on: a persistent session's queued PUBLISH can arrive in the
 * same read as the CONNACK, before a listener added after `await` would see it.
 */
export function connectDevice(
  url: string,
  clientId: string,
  user: IssuedUser,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId,
    username: clientId,
    password: user.jwt,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  });
  const inbox: { topic: string; payload: string }[] = [];
  inboxes.set(client, inbox);
  client.on('message', (topic, payload) => inbox.push({ topic, payload: payload.toString() }));
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => (client.end(true), reject(e));
    client.once('connect', (connack) => {
      sessionPresent.set(client, connack.sessionPresent);
      client.off('error', fail);
      resolve(client);
    });
    client.once('error', fail);
    client.once('close', () => fail(new Error('closed before CONNACK')));
  });
}

export async function connectService(url: string, user: IssuedUser): Promise<NatsConnection> {
  // the seed is re-encoded here so that it is a Uint8Array of this realm: nkeys.js checks `instanceof`,
  // which fails across jest's sandbox boundary and makes the nonce signature (and the CONNECT) fail
  const seed = new TextEncoder().encode(new TextDecoder().decode(user.seed));
  return connect({ servers: url, authenticator: jwtAuthenticator(user.jwt, seed), reconnect: false });
}

/** Push an account JWT to the full resolver (docs.nats.io "NATS Based Resolver": $SYS.REQ.CLAIMS.UPDATE). */
export async function pushAccount(sys: NatsConnection, accountJwt: string): Promise<string> {
  const reply = await sys.request('$SYS.REQ.CLAIMS.UPDATE', new TextEncoder().encode(accountJwt), {
    timeout: 5000,
  });
  return new TextDecoder().decode(reply.data);
}

export function closed(client: MqttClient): Promise<number> {
  return new Promise((resolve) => {
    if (client.disconnected) return resolve(performance.now());
    client.once('close', () => resolve(performance.now()));
  });
}

export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first message on `topic` not yet taken by an earlier call, from the client's whole inbox. */
export async function nextMessage(client: MqttClient, topic: string, timeoutMs = 5000): Promise<string> {
  const inbox = inboxes.get(client) ?? [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const i = inbox.findIndex((m) => m.topic === topic);
    if (i >= 0) return inbox.splice(i, 1)[0].payload;
    if (Date.now() > deadline) throw new Error(`no message on ${topic} within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SUBSCRIBE and return the SUBACK return code (128 = 0x80 failure) instead of throwing on a refusal. */
export function granted(client: MqttClient, topic: string, qos: 0 | 1 = 1): Promise<number> {
  return new Promise((resolve, reject) => {
    client.subscribe(topic, { qos }, (err, grants) => {
      if (grants?.[0]) return resolve(grants[0].qos);
      if (err && 'packet' in err) return resolve((err.packet as { granted: number[] }).granted[0]);
      reject(err ?? new Error('no SUBACK'));
    });
  });
}

/**
 * A command for an MQTT QoS 1 subscriber that must survive the device being offline. A plain NATS publish on
 * `cowroot.v1.devices.<id>.commands` reaches only connected sessions (measured: it is not kept for an offline
 * persistent session); the MQTT listener keeps QoS 1 messages in the `$MQTT_msgs` stream under
 * `$MQTT.msgs.<subject>` with header `Nmqtt-Pub: <qos>` (nats-server 2.9 server/mqtt.go, mqttStreamSubjectPrefix
 * and mqttNatsHeader), so a replica publishes there through JetStream and gets a stored acknowledgement.
 */
export function publishQueuedCommand(nc: NatsConnection, subject: string, payload: string): Promise<PubAck> {
  const h = headers();
  h.set('Nmqtt-Pub', '1');
  return nc.jetstream().publish(`$MQTT.msgs.${subject}`, new TextEncoder().encode(payload), { headers: h });
}

/** Connect, retrying while the node refuses (e.g. the MQTT streams are still being placed); failures kept. */
export async function connectDeviceRetrying(
  url: string,
  clientId: string,
  user: IssuedUser,
  extra: IClientOptions,
  failures: string[],
  giveUpMs = 30000,
): Promise<MqttClient> {
  const t0 = performance.now();
  for (;;) {
    const tTry = performance.now();
    try {
      return await connectDevice(url, clientId, user, extra);
    } catch (e) {
      failures.push(`${Math.round(performance.now() - tTry)} ms: ${(e as Error).message}`);
      if (performance.now() - t0 > giveUpMs) throw e;
      await sleep(250);
    }
  }
}
