import { BoardProfile, PlacedPartition } from './board-profile';
import { DeviceIdentity } from './device-identity';
import { FactoryRelease } from './factory-release';
import { ImageCommands, Undo } from './image-commands.adapter';

/** Everything preflight checked and loaded: the image is written from this alone. */
export interface ImagePlan {
  profile: BoardProfile;
  release: FactoryRelease;
  identity: DeviceIdentity;
  releaseKeyPem: string;
  ca: string | null;
  boardEnv: Record<string, string>;
  mqttUrl: string;
  httpUrl: string;
  poolMount: string;
  image: string;
  bmap: string;
  streamBytes: number;
}

/** One image being written: the plan, the temp image, a scratch dir, and what to undo on failure. */
export interface ImageJob {
  plan: ImagePlan;
  /** the temp image file (linked to the image's name when complete) */
  temp: string;
  work: string;
  /** runs the build's commands; SIGINT/SIGTERM kill the running one */
  commands: ImageCommands;
  /**
   * never aborted: runs the undo steps, and the commands that create what an undo step removes (losetup,
   * mount), whose result must be recorded even when an interrupt comes while they run
   */
  cleanup: ImageCommands;
  undo: Undo;
  signal?: AbortSignal;
  log: (line: string) => void;
}

export const MiB = 1024 * 1024;

/** A loop device over one partition of the image (offset + size limit: no partition scan, no udev). */
export async function attachPartition(job: ImageJob, partition: PlacedPartition): Promise<string> {
  const device = (
    await job.cleanup.run('losetup', [
      '--find',
      '--show',
      '--offset',
      String(partition.offset),
      '--sizelimit',
      String(partition.size),
      job.temp,
    ])
  ).trim();
  job.undo.push(`loop ${device}`, () => job.cleanup.run('losetup', ['-d', device]));
  throwIfInterrupted(job);
  return device;
}

/** After an uninterruptible step: stop here if SIGINT/SIGTERM came meanwhile (the caller undoes). */
export function throwIfInterrupted(job: ImageJob): void {
  if (job.signal?.aborted) throw new Error('interrupted');
}
