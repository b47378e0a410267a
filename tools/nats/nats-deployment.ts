// A NATS deployment for the server's BROKER=nats tests: the trust chain, 1 or 3 real nats-server nodes, and
// the files the server is configured with (docs/scale-out.md "Cluster mode"): the replicas' and the system
// user's .creds, the account seed, the deployed account JWT and the operator seed.
import { fmtCreds, fromSeed } from '@nats-io/jwt';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from './nats-fixture';
import type { MqttConsumerOptions, NatsServerProcess } from './nats-server-process';
import { NatsTrust } from './nats-trust';

export interface NatsDeployment {
  trust: NatsTrust;
  nodes: NatsServerProcess[];
  /** environment for a server replica (BROKER=nats and the NATS_* files) */
  serverEnv: Record<string, string>;
  mqttUrls: string[];
  stop(): Promise<void>;
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

export async function startNatsDeployment(
  dir: string,
  size: 1 | 3,
  mqttConsumers?: MqttConsumerOptions,
): Promise<NatsDeployment> {
  const trust = await NatsTrust.create();
  const nodes = await startCluster(trust, dir, size, mqttConsumers);
  const service = await trust.issueServiceUser('cowroot-server');
  const system = await trust.issueSystemUser();
  const file = (name: string, content: string | Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const creds = (name: string, user: { jwt: string; seed: Uint8Array }) =>
    file(name, fmtCreds(user.jwt, fromSeed(new TextEncoder().encode(text(user.seed)))));
  const serverEnv = {
    BROKER: 'nats',
    NATS_URLS: nodes.map((node) => node.clientUrl).join(','),
    NATS_CREDS_FILE: creds('server.creds', service),
    NATS_SYSTEM_CREDS_FILE: creds('system.creds', system),
    NATS_ACCOUNT_SEED_FILE: file('account.seed', text(trust.account.getSeed())),
    NATS_ACCOUNT_JWT_FILE: file('account.jwt', trust.accountJwt),
    NATS_OPERATOR_SEED_FILE: file('operator.seed', text(trust.operator.getSeed())),
  };
  return {
    trust,
    nodes,
    serverEnv,
    mqttUrls: nodes.map((node) => node.mqttUrl),
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    },
  };
}

/** A device's MQTT password under BROKER=nats: a broker JWT from the server, against its credential. */
export function brokerTokenFetcher(httpUrl: string, deviceId: string, credential: string): () => Promise<string> {
  return async () => {
    const response = await fetch(`${httpUrl}/api/v1/devices/${deviceId}/broker-token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${deviceId}:${credential}`).toString('base64')}` },
    });
    const body = (await response.json()) as { token?: string };
    if (response.status !== 200 || !body.token)
      throw new Error(`broker token for ${deviceId}: HTTP ${response.status} ${JSON.stringify(body)}`);
    return body.token;
  };
}
