import { join } from 'node:path';
import { freePort } from '@cowroot/testing/free-port';
import { ReplicaProcess, SERVER_MAIN } from './replica-process';

export interface ReplicaSetOptions {
  names: string[];
  /** BROKER=nats and its files (NatsDeployment.serverEnv) */
  natsEnv: Record<string, string>;
  databaseUrl: string;
  /** each replica's DATA_DIR is `<dataDir>/<name>` */
  dataDir: string;
  adminToken: string;
  credentialKey: string;
  /** `first`: every replica's PUBLIC_URL is the first one's, as behind one load-balanced address */
  publicUrl?: 'own' | 'first';
  /** the built server (bench:cluster runs its own compiled copy) */
  main?: string;
}

/**
 * Server replicas as child processes on one PostgreSQL and one NATS deployment, started one after the
 * other (the first runs the migrations). Each is pushed to `into` before it starts, so the caller's
 * cleanup stops a replica whose start failed half way too.
 */
export async function startReplicas(into: ReplicaProcess[], options: ReplicaSetOptions): Promise<void> {
  const ports: number[] = [];
  for (const _name of options.names) ports.push(await freePort());
  for (const [i, name] of options.names.entries()) {
    const publicPort = options.publicUrl === 'first' ? ports[0] : ports[i];
    const replica = new ReplicaProcess(
      name,
      ports[i],
      {
        ...options.natsEnv,
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(ports[i]),
        PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
        DATA_DIR: join(options.dataDir, name),
        DATABASE_URL: options.databaseUrl,
        COWROOT_ADMIN_TOKEN: options.adminToken,
        COWROOT_CREDENTIAL_KEY: options.credentialKey,
        LOG_LEVEL: 'warn',
      },
      options.main ?? SERVER_MAIN,
    );
    into.push(replica);
    await replica.start();
  }
}
