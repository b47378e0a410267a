import { readFile } from 'node:fs/promises';
import { GarbageCollector, SnapshotStore, SwitchService, UbootEnv } from '@cowroot/device';
import { AgentConfig } from './config/agent-config';

/** The device core objects the agent drives, built from the config and this boot's command line. */
export interface DeviceCore {
  store: SnapshotStore;
  env: UbootEnv;
  switcher: SwitchService;
  gc: GarbageCollector;
}

export async function openDeviceCore(config: AgentConfig): Promise<DeviceCore> {
  const cmdline = await readFile(config.kernelCmdlinePath, 'utf8');
  const store = new SnapshotStore({ poolPath: config.poolPath });
  const env = new UbootEnv(config.fwEnvConfig);
  const switcher = new SwitchService(env, store, cmdline, { requiredBootFiles: config.requiredBootFiles });
  const gc = new GarbageCollector(store, () => switcher.snapshotsReferenced());
  return { store, env, switcher, gc };
}
