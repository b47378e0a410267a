/**
 * Checks of a btrfs send stream that someone else's build system made, before cowroot signs it: signing
 * tells every device to `btrfs receive` it, and receive writes wherever the stream's paths say and clones
 * from any subvolume on the device whose received_uuid a CLONE command names (docs/release-tool.md "Keys").
 */

/** The subvolume a stream creates, from its first `btrfs receive --dump` line. */
export interface StreamSubvolume {
  kind: 'full' | 'incremental';
  name: string;
  /** becomes received_uuid on the device: the manifest's snapshotUuid */
  uuid: string;
  /** incremental: the parent's uuid (received_uuid it must find on the device) */
  parentUuid: string | null;
}

export interface DumpCheck {
  subvolume: StreamSubvolume;
  commands: number;
}

/** Commands whose key=value field names another path inside the stream's subvolume (symlink's dest is its target text). */
const PATH_FIELDS: Record<string, string> = { rename: 'dest', link: 'dest', clone: 'from' };

function fieldsOf(rest: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of rest.matchAll(/(?:^|\s)([a-z_]+)=(\S*)/g)) fields[match[1]] = match[2];
  return fields;
}

/**
 * Why a dumped path leaves the subvolume, or null. The dump prints `<subvol>/<path>`: a `..` component
 * climbs out of it, and an empty one (`./s//etc`) is an absolute path in the stream.
 */
export function pathProblem(path: string, subvolume: string): string | null {
  const prefix = `./${subvolume}`;
  if (path !== prefix && path !== `${prefix}/` && !path.startsWith(`${prefix}/`)) return `is outside ./${subvolume}`;
  const inner = path.slice(prefix.length + 1);
  if (inner === '') return null;
  const parts = inner.replace(/\/$/, '').split('/');
  if (parts.some((part) => part === '')) return 'is an absolute path';
  if (parts.some((part) => part === '..' || part === '.')) return 'climbs out with ..';
  return null;
}

/**
 * Checks `btrfs receive --dump` output line by line (a big rootfs dumps millions of lines): exactly one
 * `subvol` (full) or `snapshot` (incremental) command, first; every path of every command inside that
 * subvolume. Throws with the first offending line.
 */
export class ReceiveDumpChecker {
  private subvolume: StreamSubvolume | null = null;
  private count = 0;

  line(line: string): void {
    if (line.trim() === '') return;
    this.count += 1;
    const index = this.count;
    const match = /^(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match) throw new Error(`line ${index} of the dump is not "<command> <path> ...": ${line.slice(0, 80)}`);
    const [, command, path, rest] = match;
    const fields = fieldsOf(rest);
    if (command === 'subvol' || command === 'snapshot') {
      if (this.subvolume) {
        throw new Error(
          `the stream holds more than one subvolume (${line.trim().slice(0, 80)}); send one snapshot per stream`,
        );
      }
      if (index !== 1) throw new Error(`the stream does not start with its subvolume (line ${index})`);
      const name = path.replace(/^\.\//, '');
      if (!path.startsWith('./') || name === '' || name.includes('/') || name === '..' || name === '.') {
        throw new Error(`the stream's subvolume ${path} is not a plain name`);
      }
      if (!fields.uuid) throw new Error(`the stream's ${command} line has no uuid`);
      if (command === 'snapshot' && !fields.parent_uuid) throw new Error('the snapshot line has no parent_uuid');
      this.subvolume = {
        kind: command === 'subvol' ? 'full' : 'incremental',
        name,
        uuid: fields.uuid,
        parentUuid: command === 'snapshot' ? fields.parent_uuid : null,
      };
      return;
    }
    if (!this.subvolume) throw new Error(`the stream does not start with its subvolume (line ${index})`);
    const checks = [path, ...(PATH_FIELDS[command] ? [fields[PATH_FIELDS[command]] ?? ''] : [])];
    for (const checked of checks) {
      const problem = pathProblem(checked, this.subvolume.name);
      if (problem) throw new Error(`${command} ${checked} ${problem} (line ${index} of the dump)`);
    }
  }

  result(): DumpCheck {
    if (!this.subvolume) throw new Error('the stream creates no subvolume (empty dump)');
    return { subvolume: this.subvolume, commands: this.count };
  }
}

/** The whole dump at once (tests, small streams). */
export function checkReceiveDump(dump: string): DumpCheck {
  const checker = new ReceiveDumpChecker();
  for (const line of dump.split('\n')) checker.line(line);
  return checker.result();
}

const STREAM_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
/** struct btrfs_stream_header: magic + __le32 version */
const STREAM_HEADER_BYTES = STREAM_MAGIC.length + 4;
/** struct btrfs_cmd_header: __le32 len, __le16 cmd, __le32 crc */
const COMMAND_HEADER_BYTES = 10;
/** enum btrfs_send_cmd / btrfs_send_attr (kernel fs/btrfs/send.h) */
const CMD_CLONE = 16;
const ATTR_CLONE_UUID = 20;

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Collects the source subvolume of every CLONE command of a (decompressed) send stream, fed in chunks.
 * `btrfs receive --dump` prints a clone's source path but not the uuid that picks the source subvolume
 * on the receiving side, so this reads the stream's own framing: commands are skipped by their length
 * (which also holds for protocol 2/3 data), only CLONE payloads are parsed.
 */
export class CloneSourceScanner {
  readonly cloneSources = new Set<string>();
  private pending = Buffer.alloc(0);
  private skip = 0;
  private headerSeen = false;
  private wanted: { bytes: number; clone: boolean } | null = null;

  push(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    for (;;) {
      if (this.skip > 0) {
        const skipped = Math.min(this.skip, data.length);
        this.skip -= skipped;
        data = data.subarray(skipped);
        if (this.skip > 0) return;
      }
      if (!this.headerSeen) {
        if (data.length < STREAM_HEADER_BYTES) break;
        if (!data.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) throw new Error('not a btrfs send stream');
        this.headerSeen = true;
        data = data.subarray(STREAM_HEADER_BYTES);
        continue;
      }
      if (!this.wanted) {
        if (data.length < COMMAND_HEADER_BYTES) break;
        const length = data.readUInt32LE(0);
        const command = data.readUInt16LE(4);
        data = data.subarray(COMMAND_HEADER_BYTES);
        if (command !== CMD_CLONE) {
          this.skip = length;
          continue;
        }
        this.wanted = { bytes: length, clone: true };
      }
      if (data.length < this.wanted.bytes) break;
      this.readClone(data.subarray(0, this.wanted.bytes));
      data = data.subarray(this.wanted.bytes);
      this.wanted = null;
    }
    this.pending = Buffer.from(data);
  }

  finish(): void {
    if (!this.headerSeen || this.skip > 0 || this.wanted || this.pending.length > 0) {
      throw new Error('the send stream ends in the middle of a command (truncated?)');
    }
  }

  private readClone(payload: Buffer): void {
    let offset = 0;
    while (offset + 4 <= payload.length) {
      const type = payload.readUInt16LE(offset);
      const length = payload.readUInt16LE(offset + 2);
      const value = payload.subarray(offset + 4, offset + 4 + length);
      if (type === ATTR_CLONE_UUID && length === 16) this.cloneSources.add(formatUuid(value));
      offset += 4 + length;
    }
  }
}
