import { posix } from 'node:path';

/** Where the running system mounts the pool's top level (deploy/systemd/var-lib-cowroot-pool.mount). */
export const DEFAULT_POOL_MOUNT = '/var/lib/cowroot/pool';

/** docs/factory.md "What is on the image": the per-device files, in the pool outside every snapshot. */
export const POOL_CONFIG_DIR = 'config';
export const CONFIG_FILES = {
  agent: 'agent.json',
  credential: 'credential',
  ca: 'ca.pem',
  releaseKey: 'release.pub.pem',
  fwEnv: 'fw_env.config',
} as const;

export interface AgentConfigInput {
  deviceId: string;
  mqttUrl: string;
  httpUrl: string;
  hasCa: boolean;
  poolMount: string;
}

/**
 * The agent's config file (docs/agent.md §2) as the factory writes it: every path is where the device
 * sees it, in the pool's config/ (identity, pinned key, env location) or in the release (the health
 * checks belong to the release they check). The agent validates it at start, listing every problem.
 */
export function renderAgentConfig(input: AgentConfigInput): string {
  const config = (name: string) => posix.join(input.poolMount, POOL_CONFIG_DIR, name);
  const agentConfig = {
    deviceId: input.deviceId,
    credentialFile: config(CONFIG_FILES.credential),
    server: {
      mqttUrl: input.mqttUrl,
      httpUrl: input.httpUrl,
      ...(input.hasCa ? { caFile: config(CONFIG_FILES.ca) } : {}),
    },
    poolPath: input.poolMount,
    fwEnvConfig: config(CONFIG_FILES.fwEnv),
    releasePublicKeyFile: config(CONFIG_FILES.releaseKey),
    stateDir: posix.join(input.poolMount, 'state', 'agent'),
    health: { requiredDir: '/etc/cowroot/required.d', wantedDir: '/etc/cowroot/wanted.d' },
    requiredBootFiles: ['boot/uImage', 'boot/uInitrd'],
  };
  return `${JSON.stringify(agentConfig, null, 2)}\n`;
}
