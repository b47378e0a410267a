import { open, type FileHandle } from 'node:fs/promises';
import type { CrashState } from './crash-states';
import { isDataWrite, type LogEntry, type WriteLog } from './log-writes.parser';

/**
 * Turns crash states into disk images, fast: one sparse copy of the disk before the flow is made once
 * (by the caller), the durable writes are replayed into it as the states advance through the log (they
 * only grow), and each state's unflushed writes are applied on top and undone after the judge has looked.
 * No state costs a copy of the disk.
 */
export class StateMaterializer {
  private appliedThrough = -1;
  private undo: { offset: number; bytes: Buffer }[] = [];

  private constructor(
    private readonly image: FileHandle,
    private readonly log: FileHandle,
    private readonly writeLog: WriteLog,
    /** byte offset of the logged device inside the image (0: the whole disk was logged) */
    private readonly baseOffset: number,
  ) {}

  static async open(
    imagePath: string,
    logPath: string,
    writeLog: WriteLog,
    baseOffset = 0,
  ): Promise<StateMaterializer> {
    const image = await open(imagePath, 'r+');
    try {
      return new StateMaterializer(image, await open(logPath, 'r'), writeLog, baseOffset);
    } catch (error) {
      await image.close();
      throw error;
    }
  }

  /** Puts the image into `state`; states must come in log order of their durable prefix. */
  async apply(state: CrashState): Promise<void> {
    if (this.undo.length) throw new Error('the previous state was not reverted');
    if (state.durableThrough < this.appliedThrough) {
      throw new Error(
        `state ${state.id} goes back in the log (durable ${state.durableThrough} < ${this.appliedThrough})`,
      );
    }
    for (const entry of this.writeLog.entries) {
      if (entry.index <= this.appliedThrough) continue;
      if (entry.index > state.durableThrough) break;
      if (isDataWrite(entry)) await this.write(entry, null, false);
    }
    this.appliedThrough = state.durableThrough;
    for (const index of state.extra) {
      const entry = this.writeLog.entries[index];
      if (!entry || !isDataWrite(entry)) throw new Error(`state ${state.id}: entry ${index} is not a data write`);
      await this.write(entry, state.torn.find((t) => t.entry === index)?.sectors ?? null, true);
    }
  }

  /** Undoes the unflushed writes of the last applied state (the durable ones stay). */
  async revert(): Promise<void> {
    for (const { offset, bytes } of this.undo.reverse()) await this.image.write(bytes, 0, bytes.length, offset);
    this.undo = [];
  }

  async close(): Promise<void> {
    await Promise.all([this.image.close(), this.log.close()]);
  }

  private async write(entry: LogEntry, sectors: number[] | null, keepUndo: boolean): Promise<void> {
    const size = this.writeLog.sectorSize;
    const data = Buffer.alloc(entry.nrSectors * size);
    await this.log.read(data, 0, data.length, entry.dataOffset);
    const runs = sectors ? sectors.map((s) => [s, s + 1]) : [[0, entry.nrSectors]];
    for (const [from, to] of runs) {
      const offset = this.baseOffset + (entry.sector + from) * size;
      const length = (to - from) * size;
      if (keepUndo) {
        const old = Buffer.alloc(length);
        await this.image.read(old, 0, length, offset);
        this.undo.push({ offset, bytes: old });
      }
      await this.image.write(data, from * size, length, offset);
    }
  }
}
