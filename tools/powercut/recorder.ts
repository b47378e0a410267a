import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner, ENV, SwitchState } from '@cowroot/device';
import type { VdevArtifacts } from '../vdev/vdev-artifacts';
import { VirtualDevice } from '../vdev/virtual-device';
import type { DiskLayout } from './fast-judge';
import type { Flow } from './flows';

const runner = new CommandRunner();

/** One recorded flow: the disk before it, the write log of its boot, and what held before it. */
export interface Recording {
  flow: string;
  /** sparse copy of the disk right before the flow's power-on */
  before: string;
  /** the blklogwrites log of the flow's boot */
  log: string;
  envBefore: Record<string, string>;
  confirmedBefore: string[];
  layout: DiskLayout;
  seconds: number;
}

/** QEMU arguments: the device disk behind blklogwrites (every write logged), the streams disk beside it. */
export function loggedDriveArgs(disk: string, log: string, streams: string): string[] {
  return [
    '-blockdev',
    `driver=file,node-name=pc-disk,filename=${disk}`,
    '-blockdev',
    `driver=file,node-name=pc-log,filename=${log}`,
    // the log super block after every entry: a log cut off by a crash of the recorder is still whole
    '-blockdev',
    'driver=blklogwrites,node-name=pc-logged,file=pc-disk,log=pc-log,log-append=off,log-sector-size=512,log-super-update-interval=1',
    // fixed PCI slots: u-boot's "virtio 0" and Linux's vda are the device disk, vdb the streams
    '-device',
    'virtio-blk-pci,drive=pc-logged,addr=0x6',
    '-blockdev',
    `driver=file,node-name=pc-streams,filename=${streams},read-only=on`,
    '-device',
    'virtio-blk-pci,drive=pc-streams,addr=0x7',
  ];
}

/** Snapshots that must survive any power cut in the flow: confirmed ones, per the env before it. */
export function confirmedSnapshots(env: Record<string, string>): string[] {
  const ids = [env[ENV.current], env[ENV.previous]];
  if (env[ENV.state] === SwitchState.Confirmed) ids.push(env[ENV.trial]);
  return [...new Set(ids.filter((id): id is string => !!id))];
}

export async function layoutOf(device: VirtualDevice): Promise<DiskLayout> {
  return { fat: device.partition(1), pool: device.partition(2) };
}

/**
 * Runs the flows one after the other on one virtual device, each boot recorded. Each flow's boot must
 * power off cleanly and print its `expect` lines, else the recording is worthless and this throws.
 */
export async function recordFlows(
  dir: string,
  artifacts: VdevArtifacts,
  streams: string,
  flows: Flow[],
  log: (line: string) => void,
): Promise<Recording[]> {
  await mkdir(dir, { recursive: true });
  const device = await VirtualDevice.create(join(dir, 'device'), artifacts);
  const layout = await layoutOf(device);
  const recordings: Recording[] = [];
  const streamDrive = ['-drive', `file=${streams},if=virtio,format=raw,readonly=on`];
  for (const flow of flows) {
    for (const step of flow.setup ?? []) {
      if (step.env) await device.writeEnv(step.env);
      if (step.control) {
        await device.setControl(step.control);
        const setupBoot = await device.boot({ drive: [...defaultDrive(device), ...streamDrive] });
        if (setupBoot.end !== 'poweroff' || /COWROOT-ERROR/.test(setupBoot.log)) {
          throw new Error(`setup boot of ${flow.name} failed:\n${setupBoot.log.slice(-3000)}`);
        }
      }
    }
    await device.setControl(flow.control);
    const envBefore = await device.readEnv();
    const flowDir = join(dir, flow.name);
    await rm(flowDir, { recursive: true, force: true });
    await mkdir(flowDir);
    const before = join(flowDir, 'before.img');
    await runner.run('cp', ['--sparse=always', '--reflink=auto', device.disk, before]);
    const logPath = join(flowDir, 'writes.log');
    await writeFile(logPath, '');
    log(`[powercut] recording ${flow.name}: ${flow.what}`);
    const record = await device.boot({ drive: loggedDriveArgs(device.disk, logPath, streams), timeoutMs: 600_000 });
    await writeFile(join(flowDir, 'serial.log'), record.log);
    const missing = flow.expect.filter((line) => !record.log.includes(line));
    if (record.end !== 'poweroff' || missing.length || /COWROOT-ERROR/.test(record.log)) {
      throw new Error(
        `recording ${flow.name} did not run as planned (end=${record.end}, missing ${JSON.stringify(missing)}):\n${record.log.slice(-3000)}`,
      );
    }
    const recording: Recording = {
      flow: flow.name,
      before,
      log: logPath,
      envBefore,
      confirmedBefore: confirmedSnapshots(envBefore),
      layout,
      seconds: record.seconds,
    };
    await writeFile(join(flowDir, 'recording.json'), `${JSON.stringify(recording, null, 2)}\n`);
    log(`[powercut] ${flow.name} recorded in ${record.seconds.toFixed(0)} s`);
    recordings.push(recording);
  }
  return recordings;
}

function defaultDrive(device: VirtualDevice): string[] {
  return ['-drive', `file=${device.disk},if=virtio,format=raw`];
}

/** Recordings kept from an earlier run in `dir` (all of `flows`, else null). */
export async function loadRecordings(dir: string, flows: Flow[]): Promise<Recording[] | null> {
  const recordings: Recording[] = [];
  for (const flow of flows) {
    const path = join(dir, flow.name, 'recording.json');
    if (!existsSync(path)) return null;
    recordings.push(JSON.parse(await readFile(path, 'utf8')) as Recording);
  }
  return recordings;
}
