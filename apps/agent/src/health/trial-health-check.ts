import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HealthCheckKind, HealthCheckResult, HealthReport, HealthStatus } from '@cowroot/protocol';
import { SnapshotStore } from '@cowroot/device';
import { sanitizeCheckOutput } from './check-output';
import { runCheckDirectory } from './health-check-runner';

export interface TrialHealthOptions {
  store: SnapshotStore;
  /** the snapshot this trial boot should run (cowroot.snapshot= and the env's trial) */
  expectedSnapshot: string;
  envTrial: string;
  rootfsPath: string;
  requiredDir: string;
  wantedDir: string;
  checkTimeoutMs: number;
  /** resolves whether the server answered over MQTT in time (started at agent start) */
  serverReachable: Promise<boolean>;
  mqttConfirmTimeoutMs: number;
}

export interface TrialHealthVerdict {
  report: HealthReport;
  /** the first failed check that rejects the trial (builtin or required), null when the trial may be confirmed */
  failed: HealthCheckResult | null;
}

/** Built-in check names, as they appear in reports and in `rolled-back` events. */
export const BUILTIN_CHECK = {
  rootSnapshot: 'root-snapshot',
  rootfsWritable: 'rootfs-writable',
  serverReachable: 'server-reachable',
} as const;

async function timed(
  name: string,
  body: () => Promise<{ passed: boolean; output: string }>,
): Promise<HealthCheckResult> {
  const started = Date.now();
  let result: { passed: boolean; output: string };
  try {
    result = await body();
  } catch (error) {
    result = { passed: false, output: (error as Error).message };
  }
  return {
    name,
    kind: HealthCheckKind.Builtin,
    passed: result.passed,
    durationMs: Date.now() - started,
    outputTail: sanitizeCheckOutput(result.output),
  };
}

/**
 * The root is the snapshot that was meant to be tried: the kernel was told to boot it, the env's trial
 * names it, it is a read-only snapshot in the pool, and the rw workspace the initramfs made was
 * snapshotted from it (its parent_uuid is the snapshot's uuid).
 */
async function checkRootSnapshot(options: TrialHealthOptions): Promise<{ passed: boolean; output: string }> {
  const { store, expectedSnapshot } = options;
  if (options.envTrial !== expectedSnapshot) {
    return {
      passed: false,
      output: `booted ${expectedSnapshot} but the env's trial is ${JSON.stringify(options.envTrial)}`,
    };
  }
  const snapshot = await store.get(expectedSnapshot);
  if (!snapshot) return { passed: false, output: `snapshot ${expectedSnapshot} is not in the pool` };
  if (!snapshot.readOnly) return { passed: false, output: `snapshot ${expectedSnapshot} is not read-only` };
  const workspace = await store.btrfs.show(store.workspacePath).catch(() => null);
  if (!workspace) return { passed: false, output: `no workspace subvolume at ${store.workspacePath}` };
  if (workspace.parentUuid !== snapshot.uuid) {
    return {
      passed: false,
      output: `the workspace was made from ${workspace.parentUuid ?? 'nothing'}, not from ${expectedSnapshot} (${snapshot.uuid})`,
    };
  }
  return { passed: true, output: `root is a workspace of ${expectedSnapshot} (${snapshot.uuid})` };
}

/** A real write that reaches the disk: create, write, fsync, remove. */
async function checkRootfsWritable(path: string): Promise<{ passed: boolean; output: string }> {
  const probe = join(path, `.cowroot-health-${randomBytes(4).toString('hex')}`);
  try {
    const file = await open(probe, 'wx', 0o600);
    try {
      await file.writeFile('cowroot health probe\n');
      await file.sync();
    } finally {
      await file.close();
    }
    return { passed: true, output: `wrote and synced ${probe}` };
  } catch (error) {
    return { passed: false, output: `cannot write to ${path}: ${(error as Error).message}` };
  } finally {
    await rm(probe, { force: true });
  }
}

/**
 * Every check of a trial boot (docs/agent.md §5): built-in root, writability and server reachability, then
 * required.d (all must pass) and wanted.d (reported only). The server check was started at agent start
 * and is awaited last, so its timeout overlaps the other checks instead of adding to them.
 */
export async function runTrialHealthChecks(options: TrialHealthOptions): Promise<TrialHealthVerdict> {
  const checks: HealthCheckResult[] = [];
  checks.push(await timed(BUILTIN_CHECK.rootSnapshot, () => checkRootSnapshot(options)));
  checks.push(await timed(BUILTIN_CHECK.rootfsWritable, () => checkRootfsWritable(options.rootfsPath)));
  checks.push(...(await runCheckDirectory(options.requiredDir, HealthCheckKind.Required, options.checkTimeoutMs)));
  checks.push(...(await runCheckDirectory(options.wantedDir, HealthCheckKind.Wanted, options.checkTimeoutMs)));
  checks.push(
    await timed(BUILTIN_CHECK.serverReachable, async () =>
      (await options.serverReachable)
        ? { passed: true, output: 'the server acknowledged a publish over MQTT' }
        : { passed: false, output: `the server was not reachable over MQTT within ${options.mqttConfirmTimeoutMs} ms` },
    ),
  );
  const failed = checks.find((check) => !check.passed && check.kind !== HealthCheckKind.Wanted) ?? null;
  return {
    report: { status: failed ? HealthStatus.Failed : HealthStatus.Passed, checkedAt: new Date().toISOString(), checks },
    failed,
  };
}
