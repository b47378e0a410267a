import { Writable } from 'node:stream';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '../device-error';
import { ByteReader } from './byte-reader';
import { DeltaCommand, DeltaFormat, WriteStub, decodeBatchSource, decodeWriteStub } from './delta-format';
import { PredecessorRef } from './predecessor';
import { COMMAND_HEADER_BYTES, SendStreamFormatError, hasValidCrc } from './send-stream';
import { decodeWriteRun } from './write-run';

/** The commands of a section as the rebuild reads them: one whole command (header + payload) at a time. */
export type ReadCommand = (reader: ByteReader) => Promise<Buffer>;

export function corrupt(message: string, cause?: unknown): DeviceError {
  return new DeviceError(ErrorCode.DeltaCorrupt, `delta artifact: ${message}`, { cause });
}

export function guard<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SendStreamFormatError) throw corrupt(error.message, error);
    throw error;
  }
}

/**
 * The commands of one section whose crc32c is checked only when the section fails (PATCH_BEGIN,
 * BATCH_BEGIN, BATCH_SOURCE; docs/agent.md §4.4). Checking them at once was crc32c in JavaScript over
 * every batch source twice (the prefetch's look ahead, then the batch), under the agent's jitless node.
 * It is redundant for correctness: whatever a damaged header makes the section produce ends in the
 * rebuilt stream, whose size and sha256 are checked before its END reaches `btrfs receive`, and the
 * artifact's sha256 was checked at download. It matters for the report: a damaged header mostly makes its
 * section fail for a reason that blames something else (a predecessor "missing", a decoder's complaint),
 * so a failing section first asks these crcs, and a mismatch is the cause it reports.
 */
export class UncheckedCommands {
  private readonly commands: Buffer[] = [];

  constructor(private readonly what: string) {}

  /** Holds `command` (a view of the delta stream's chunk: it stays valid) for a check on failure. */
  add(command: Buffer): Buffer {
    this.commands.push(command);
    return command;
  }

  /** The error to report for the section's failure `error`: a crc mismatch among its commands first. */
  explain(error: unknown): unknown {
    const bad = this.commands.findIndex((command) => !hasValidCrc(command));
    if (bad < 0) return error;
    return corrupt(`crc mismatch in ${this.what} (${bad === 0 ? 'its first command' : `command ${bad + 1}`})`, error);
  }
}

/**
 * A section's writes, checked at once (each carries the crc the rebuilt WRITE gets): `count` WRITE_STUBs
 * up to format 2, WRITE_RUNs holding `count` writes in all from format 3.
 */
export async function readWriteStubs(
  readCommand: ReadCommand,
  reader: ByteReader,
  count: number,
  format: DeltaFormat,
  what: string,
): Promise<{ stubs: WriteStub[]; dataBytes: number }> {
  const expected = format >= 3 ? DeltaCommand.WriteRun : DeltaCommand.WriteStub;
  const name = format >= 3 ? 'write run' : 'write stub';
  const stubs: WriteStub[] = [];
  let dataBytes = 0;
  for (let i = 0; stubs.length < count; i++) {
    const command = await readCommand(reader);
    if (command.readUInt16LE(4) !== expected || !hasValidCrc(command)) {
      throw corrupt(`${what}: bad ${name} ${i}`);
    }
    const payload = command.subarray(COMMAND_HEADER_BYTES);
    const decoded = guard(() => (format >= 3 ? decodeWriteRun(payload) : [decodeWriteStub(payload)]));
    if (stubs.length + decoded.length > count) throw corrupt(`${what}: its write runs hold more writes than announced`);
    for (const stub of decoded) {
      dataBytes += stub.dataLength;
      stubs.push(stub);
    }
  }
  return { stubs, dataBytes };
}

/** A batch's BATCH_SOURCEs, their crcs left to `unchecked`; together at most `window` bytes. */
export async function readBatchSources(
  readCommand: ReadCommand,
  reader: ByteReader,
  count: number,
  window: number,
  unchecked: UncheckedCommands,
  what: string,
): Promise<PredecessorRef[]> {
  const sources: PredecessorRef[] = [];
  let sourceBytes = 0;
  for (let i = 0; i < count; i++) {
    const command = unchecked.add(await readCommand(reader));
    if (command.readUInt16LE(4) !== DeltaCommand.BatchSource) throw corrupt(`${what}: bad source ${i}`);
    const source = guard(() => decodeBatchSource(command.subarray(COMMAND_HEADER_BYTES)));
    sourceBytes += source.size;
    if (sourceBytes > window) throw corrupt(`${what}: its sources exceed its window`);
    sources.push({ sourcePath: source.path, sourceSize: source.size, sourceSha256: source.sha256 });
  }
  return sources;
}

/** The decoder closed its input: a consequence; its own exit status says why. */
export class DecoderStopped extends Error {}

export async function writeAll(stdin: Writable, chunk: Buffer): Promise<void> {
  if (stdin.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stdin.off('drain', onDrain);
      stdin.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new DecoderStopped('the patch decoder stopped reading its input'));
    };
    stdin.on('drain', onDrain);
    stdin.on('close', onClose);
  });
}

/**
 * A section's PATCH_DATA commands into its decoder, with backpressure. Their crc is not checked (unlike
 * our other commands): it was the largest cost of a rebuild on a device (crc32c in JavaScript, jitless),
 * and it is redundant — the zstd frame carries a checksum of what it decodes to, which the decoder
 * checks, the artifact's sha256 was checked at download, and the rebuilt stream's before END.
 */
export async function feedPatchData(
  readCommand: ReadCommand,
  reader: ByteReader,
  patchSize: number,
  stdin: Writable,
  what: string,
  onFirst?: (chunk: Buffer) => void,
): Promise<void> {
  let fed = 0;
  while (fed < patchSize) {
    const command = await readCommand(reader);
    if (command.readUInt16LE(4) !== DeltaCommand.PatchData) {
      throw corrupt(`${what}: patch data expected, command ${command.readUInt16LE(4).toString(16)} found`);
    }
    const chunk = command.subarray(COMMAND_HEADER_BYTES);
    fed += chunk.length;
    if (fed > patchSize) throw corrupt(`${what}: more patch data than announced`);
    if (fed === chunk.length) onFirst?.(chunk);
    await writeAll(stdin, chunk);
  }
  stdin.end();
}
