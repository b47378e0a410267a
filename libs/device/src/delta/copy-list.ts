import { closeSync, openSync, readSync } from 'node:fs';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '../device-error';
import { ByteReader } from './byte-reader';
import { DeltaCommand, PatchBegin, WriteStub } from './delta-format';
import { ReadCommand, corrupt } from './section-commands';
import { COMMAND_HEADER_BYTES, SendCommand, dataHeader, hasValidCrc } from './send-stream';

/**
 * The copy list (format 3, a patch section's method 1; docs/release-tool.md "Delta artifacts"): a file's
 * new data as stretches copied from its predecessor and literal bytes between them, instead of a zstd
 * `--patch-from` frame. For a large file with a few thousand scattered edits a zstd frame pays ≈ 11
 * bytes per 128 KiB block of output whether the block changed or not (its format's largest block: 4.2 KB
 * for 48 MiB copied unchanged) and a sequence per edit; a copy list pays its instructions only. The
 * release tool writes whichever of the two is smaller.
 *
 * Layout of its patch bytes (the section's PATCH_DATA payloads, in order):
 *
 *   le32 n                          instructions
 *   n × le32 adds, copies, jumps    three columns, each as four byte planes (all low bytes, then …):
 *                                   numbers of one kind side by side compress (the artifact's zstd)
 *   literal bytes                   exactly the sum of adds
 *
 * Instruction i: `adds[i]` literal bytes out; the predecessor's cursor moves by `jumps[i]` (zigzag:
 * even = forward, odd = back); `copies[i]` bytes of the predecessor from the cursor out, and the cursor
 * after them. The output is the run's data, exactly `targetSize` bytes.
 *
 * Checks: nothing here is covered by a zstd frame checksum, so the PATCH_DATA crcs of a copy list are
 * checked (a few KiB to a few hundred: milliseconds even in jitless JavaScript). The predecessor is not
 * hashed here (48 MiB: 50 ms of the node process, a sixth of its rebuild): its size was checked, and
 * other bytes in it give WRITEs whose crc32c `btrfs receive` refuses, or a stream whose sha256 is not the
 * manifest's; only then is it hashed, to name it (DeltaSections.explainMismatch: DELTA_BASE_MISMATCH).
 */
export const CopyListMethod = 1;

/** Instructions a device accepts in one copy list (their columns are held: 12 bytes each). */
export const MAX_COPY_INSTRUCTIONS = 65536;

/** Most literal bytes taken from the patch reader at once (they are copied into the WRITE). */
const PIECE_BYTES = 64 * 1024;

/** Reads `count` le32 numbers stored as four byte planes. */
function readPlanes(bytes: Buffer, start: number, count: number): Uint32Array {
  const values = new Uint32Array(count);
  for (let plane = 0; plane < 4; plane++) {
    const at = start + plane * count;
    const shift = plane * 8;
    for (let i = 0; i < count; i++) values[i] += bytes[at + i] * 2 ** shift;
  }
  return values;
}

/** `values` as four byte planes (the build side of readPlanes). */
export function writePlanes(values: readonly number[]): Buffer {
  const count = values.length;
  const out = Buffer.alloc(count * 4);
  values.forEach((value, i) => {
    for (let plane = 0; plane < 4; plane++) out[plane * count + i] = Math.floor(value / 2 ** (plane * 8)) & 0xff;
  });
  return out;
}

export interface CopyList {
  adds: number[];
  copies: number[];
  /** signed source cursor moves */
  jumps: number[];
  literals: Buffer[];
}

/** A copy list's patch bytes (the release tool's side). */
export function encodeCopyList(list: CopyList): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(list.adds.length);
  const zigzag = list.jumps.map((jump) => (jump >= 0 ? jump * 2 : -jump * 2 - 1));
  return Buffer.concat([head, writePlanes(list.adds), writePlanes(list.copies), writePlanes(zigzag), ...list.literals]);
}

/** The section's PATCH_DATA payloads, each crc checked, exactly `patchSize` bytes of them. */
async function* checkedPatchData(
  readCommand: ReadCommand,
  reader: ByteReader,
  patchSize: number,
  what: string,
): AsyncGenerator<Buffer> {
  let fed = 0;
  while (fed < patchSize) {
    const command = await readCommand(reader);
    if (command.readUInt16LE(4) !== DeltaCommand.PatchData || !hasValidCrc(command)) {
      throw corrupt(`${what}: bad patch data in its copy list`);
    }
    const chunk = command.subarray(COMMAND_HEADER_BYTES);
    fed += chunk.length;
    if (fed > patchSize) throw corrupt(`${what}: more patch data than announced`);
    yield chunk;
  }
}

/** A section of method 1: its copy list read and checked, then the run's writes rebuilt from it. */
export async function* copyListWrites(
  readCommand: ReadCommand,
  reader: ByteReader,
  source: string,
  begin: PatchBegin,
  stubs: readonly WriteStub[],
  version: number,
  what: string,
): AsyncGenerator<Buffer[]> {
  const patch = new ByteReader(checkedPatchData(readCommand, reader, begin.patchSize, what));
  const head = await patch.read(4);
  if (head.length !== 4) throw corrupt(`${what}: its copy list is cut short`);
  const count = head.readUInt32LE(0);
  if (count === 0 || count > MAX_COPY_INSTRUCTIONS) throw corrupt(`${what}: a copy list of ${count} instructions`);
  const columns = await patch.read(12 * count);
  if (columns.length !== 12 * count) throw corrupt(`${what}: its copy list is cut short`);
  const adds = readPlanes(columns, 0, count);
  const copies = readPlanes(columns, 4 * count, count);
  const jumps = readPlanes(columns, 8 * count, count);
  let literalBytes = 0;
  let copiedBytes = 0;
  for (let i = 0; i < count; i++) {
    literalBytes += adds[i];
    copiedBytes += copies[i];
  }
  if (4 + 12 * count + literalBytes !== begin.patchSize || literalBytes + copiedBytes !== begin.targetSize) {
    throw corrupt(`${what}: its copy list disagrees with its sizes`);
  }
  const fill = new CopyListFiller(patch, source, begin, { count, adds, copies, jumps }, what);
  try {
    for (const stub of stubs) yield [await fill.write(version, stub)];
    await fill.finish();
  } finally {
    fill.close();
  }
}

/**
 * Rebuilds the run's WRITEs from a checked copy list, each into one buffer of its own (header, attributes,
 * then its data read straight from the predecessor or copied from the literal bytes): no join of pieces,
 * and the output passes on without being copied again (the reconstructor hands a whole WRITE on as it
 * is). Measured against the pieces joined twice: see docs/delta-benchmark-log.md "Format 3".
 */
class CopyListFiller {
  private readonly fd: number;
  private instruction = 0;
  /** the current instruction's literal bytes, then its copy */
  private phase: 'literal' | 'copy' = 'literal';
  /** bytes left in the current phase */
  private left: number;
  private cursor = 0;

  constructor(
    private readonly patch: ByteReader,
    source: string,
    private readonly begin: PatchBegin,
    private readonly list: { count: number; adds: Uint32Array; copies: Uint32Array; jumps: Uint32Array },
    private readonly what: string,
  ) {
    this.fd = openSync(source, 'r');
    this.left = list.adds[0];
  }

  /** The WRITE of `stub`, its data filled from the list. */
  async write(version: number, stub: WriteStub): Promise<Buffer> {
    const header = dataHeader(version, stub.dataLength);
    const dataAt = COMMAND_HEADER_BYTES + stub.prefix.length + header.length;
    const command = Buffer.allocUnsafe(dataAt + stub.dataLength + stub.suffix.length);
    command.writeUInt32LE(command.length - COMMAND_HEADER_BYTES, 0);
    command.writeUInt16LE(SendCommand.Write, 4);
    command.writeUInt32LE(stub.crc, 6);
    stub.prefix.copy(command, COMMAND_HEADER_BYTES);
    header.copy(command, COMMAND_HEADER_BYTES + stub.prefix.length);
    await this.fill(command, dataAt, dataAt + stub.dataLength);
    stub.suffix.copy(command, dataAt + stub.dataLength);
    return command;
  }

  /** The run's next bytes into `target`, from `at` up to `end`. */
  private async fill(target: Buffer, at: number, end: number): Promise<void> {
    while (at < end) {
      if (this.left === 0) {
        if (!this.advance()) throw corrupt(`${this.what}: its copy list gives fewer bytes than its writes`);
      } else if (this.phase === 'literal') {
        const piece = await this.patch.read(Math.min(this.left, end - at, PIECE_BYTES));
        if (piece.length === 0) throw corrupt(`${this.what}: its copy list is cut short`);
        piece.copy(target, at);
        at += piece.length;
        this.left -= piece.length;
      } else {
        const read = readSync(this.fd, target, at, Math.min(this.left, end - at), this.cursor);
        if (read === 0) {
          throw new DeviceError(
            ErrorCode.DeltaBaseMismatch,
            `predecessor ${this.begin.sourcePath} shrank while it was read`,
          );
        }
        at += read;
        this.cursor += read;
        this.left -= read;
      }
    }
  }

  /** From an instruction's literal bytes to its copy (the cursor moved), or to the next instruction. */
  private advance(): boolean {
    const { list } = this;
    if (this.phase === 'literal') {
      const jump = list.jumps[this.instruction];
      this.cursor += jump % 2 === 0 ? jump / 2 : -(jump + 1) / 2;
      this.phase = 'copy';
      this.left = list.copies[this.instruction];
      if (this.cursor < 0 || this.cursor + this.left > this.begin.sourceSize) {
        throw corrupt(`${this.what}: its copy list reads outside its predecessor`);
      }
      return true;
    }
    if (this.instruction + 1 >= list.count) return false;
    this.instruction += 1;
    this.phase = 'literal';
    this.left = list.adds[this.instruction];
    return true;
  }

  /** After the last write: nothing may be left of the list. */
  async finish(): Promise<void> {
    do {
      if (this.left > 0) throw corrupt(`${this.what}: its copy list gives more bytes than its writes`);
    } while (this.advance());
    if (!(await this.patch.atEnd())) throw corrupt(`${this.what}: more literal bytes than its copy list uses`);
  }

  close(): void {
    closeSync(this.fd);
  }
}
