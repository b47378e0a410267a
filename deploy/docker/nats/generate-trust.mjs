#!/usr/bin/env node
// Generates the NATS operator-mode trust chain and node configs for the cluster profile
// (deploy/docker/cluster.yml, docs/scale-out.md "Cluster mode"): operator, system account SYS, application
// account COWROOT with JetStream, the replicas' user and a system user (.creds), and nats-1..3.conf.
// Usage: node deploy/docker/nats/generate-trust.mjs <output dir>   (refuses to overwrite an existing one)
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const jwt = require('@nats-io/jwt');

const out = process.argv[2];
if (!out) {
  console.error('usage: node deploy/docker/nats/generate-trust.mjs <output dir>');
  process.exit(2);
}
if (existsSync(join(out, 'operator.seed'))) {
  console.error(`${out} already holds a trust chain: remove it first (devices' JWTs die with it)`);
  process.exit(1);
}
mkdirSync(out, { recursive: true, mode: 0o700 });

// nats-server reads a missing limit as 0: every one is stated (-1 = unlimited), JetStream on for COWROOT
const NO_LIMITS = { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, leaf: -1 };
const text = (bytes) => new TextDecoder().decode(bytes);
const write = (name, content) => writeFileSync(join(out, name), content, { mode: 0o600 });

const operator = jwt.createOperator();
const sys = jwt.createAccount();
const app = jwt.createAccount();
const operatorJwt = await jwt.encodeOperator('cowroot', operator, { system_account: sys.getPublicKey() });
const sysJwt = await jwt.encodeAccount('SYS', sys, { limits: NO_LIMITS }, { signer: operator });
const appJwt = await jwt.encodeAccount(
  'COWROOT',
  app,
  { limits: { ...NO_LIMITS, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } },
  { signer: operator },
);
const replicaUser = jwt.createUser();
const replicaJwt = await jwt.encodeUser('cowroot-server', replicaUser, app);
const sysUser = jwt.createUser();
const sysUserJwt = await jwt.encodeUser('cowroot-system', sysUser, sys);

write('operator.seed', text(operator.getSeed()));
write('account.seed', text(app.getSeed()));
write('account.jwt', appJwt);
write('server.creds', jwt.fmtCreds(replicaJwt, replicaUser));
write('system.creds', jwt.fmtCreds(sysUserJwt, sysUser));

const nodes = ['nats-1', 'nats-2', 'nats-3'];
for (const node of nodes) {
  write(
    `${node}.conf`,
    [
      `server_name: ${node}`,
      'listen: 0.0.0.0:4222',
      'http: 0.0.0.0:8222',
      `operator: ${operatorJwt}`,
      `system_account: ${sys.getPublicKey()}`,
      'resolver: { type: full, dir: "/data/jwt", allow_delete: false, interval: "2m", timeout: "2s" }',
      `resolver_preload: { ${sys.getPublicKey()}: ${sysJwt}, ${app.getPublicKey()}: ${appJwt} }`,
      'jetstream { store_dir: "/data/js", max_memory_store: 256MB, max_file_store: 20GB }',
      'mqtt { listen: 0.0.0.0:1883, stream_replicas: 3 }',
      'cluster {',
      '  name: cowroot',
      '  listen: 0.0.0.0:6222',
      `  routes: [${nodes.map((n) => `nats-route://${n}:6222`).join(', ')}]`,
      '}',
      '',
    ].join('\n'),
  );
}
console.log(`trust chain and nats-1..3.conf written to ${out} (application account ${app.getPublicKey()})`);
