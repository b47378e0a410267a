import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner, UbootEnv, type EnvUpdate } from '@cowroot/device';
import { QEMU_COMMAND, type VdevArtifacts } from './vdev-artifacts';

const runner = new CommandRunner();

/** stdout of a host command; a failure names the command line and the end of its stderr (CommandError). */
async function run(command: string, args: string[]): Promise<string> {
  return (await runner.run(command, args, { maxStdoutBytes: 64 * 1024 * 1024 })).stdout;
}

export interface Partition {
  offset: number;
  size: number;
}

export interface BootOptions {
  /** cut the power (SIGKILL QEMU) as soon as this appears on the serial console */
  cutPowerOn?: string | RegExp;
  /** wall-clock limit of the boot; QEMU is killed then (default 180 s: TCG on a loaded 2-core machine) */
  timeoutMs?: number;
  /** a guest reset (watchdog) restarts the machine instead of ending the run (no -no-reboot) */
  allowReset?: boolean;
  /** QEMU arguments that attach the disk instead of the plain -drive (tools/powercut: a blklogwrites blockdev) */
  drive?: string[];
}

/** What one power-on showed on the serial console. */
export interface BootRecord {
  log: string;
  /** poweroff: the guest powered off (or rebooted: -no-reboot); power-cut: killed on cutPowerOn */
  end: 'poweroff' | 'power-cut' | 'timeout';
  seconds: number;
  /** the snapshot and trial flag u-boot handed to the kernel (the last `cowroot: booting snapshot` line) */
  uboot: { snapshot: string; trial: string } | null;
  /** what the guest agent reported after switch_root (the last COWROOT-BOOTED line) */
  linux: { snapshot: string; trial: string; release: string; scratch: string } | null;
  /** the u-boot prompt was reached (nothing bootable): the one outcome cowroot must never produce */
  reachedPrompt: boolean;
}

/**
 * One virtual cowroot device: a copy of the base disk, booted by the btrfs-capable u-boot in QEMU (TCG),
 * judged by its serial console. The host drives the guest agent through the control area (partition 3)
 * and reads the u-boot env back from the FAT partition with the real fw_printenv.
 */
export class VirtualDevice {
  readonly disk: string;
  /** wall-clock seconds of every power-on of this device, in order (the figures of docs/boot-chain.md) */
  readonly bootSeconds: number[] = [];
  private partitions: Partition[] = [];

  private constructor(
    readonly dir: string,
    private readonly artifacts: VdevArtifacts,
  ) {
    this.disk = join(dir, 'disk.img');
  }

  /** A new device on a copy of the base disk. */
  static async create(dir: string, artifacts: VdevArtifacts): Promise<VirtualDevice> {
    await mkdir(dir, { recursive: true });
    const device = new VirtualDevice(dir, artifacts);
    await run('cp', ['--sparse=always', '--reflink=auto', artifacts.baseDisk, device.disk]);
    await device.readPartitionTable();
    return device;
  }

  /** A device whose disk already exists in `dir` (kept from an earlier run). */
  static async open(dir: string, artifacts: VdevArtifacts): Promise<VirtualDevice> {
    const device = new VirtualDevice(dir, artifacts);
    await device.readPartitionTable();
    return device;
  }

  /** The QEMU system emulator of the device's board. */
  qemuCommand(): string {
    return QEMU_COMMAND[this.artifacts.board];
  }

  /** QEMU's arguments: TCG always (KVM is not usable here), no reboot (a reboot ends the run). */
  qemuArgs(serial: string[], allowReset = false, drive?: string[]): string[] {
    const machine =
      this.artifacts.board === 'arm64'
        ? // QEMU virt: RAM from 0x40000000 (the load addresses of make-disk.sh); cortex-a57, as `max`
          // emulates pointer authentication and costs TCG time
          ['-machine', 'virt', '-cpu', 'cortex-a57', '-m', '1024']
        : // no emulated VGA: the console is serial, and drawing an unseen screen costs TCG time
          ['-m', '512', '-vga', 'none'];
    return [
      '-accel',
      'tcg',
      ...machine,
      ...(allowReset ? [] : ['-no-reboot']),
      '-nic',
      'none',
      '-display',
      'none',
      // the board's hardware watchdog: when it fires, the machine resets (u-boot runs again)
      '-device',
      'i6300esb',
      '-action',
      'watchdog=reset',
      ...serial,
      '-bios',
      this.artifacts.uBootRom,
      ...(drive ?? ['-drive', `file=${this.disk},if=virtio,format=raw`]),
    ];
  }

  private async readPartitionTable(): Promise<void> {
    const table = JSON.parse(await run('sfdisk', ['-J', this.disk])) as {
      partitiontable: { sectorsize?: number; partitions: { start: number; size: number }[] };
    };
    const sector = table.partitiontable.sectorsize ?? 512;
    this.partitions = table.partitiontable.partitions.map((p) => ({ offset: p.start * sector, size: p.size * sector }));
  }

  partition(number: 1 | 2 | 3): Partition {
    const found = this.partitions[number - 1];
    if (!found) throw new Error(`disk has no partition ${number}`);
    return found;
  }

  /** The guest agent's commands for the next boot (tools/vdev/guest/init), one per line. */
  async setControl(commands: string[]): Promise<void> {
    const area = this.partition(3);
    const text = Buffer.from(commands.map((c) => `${c}\n`).join(''));
    const block = Buffer.alloc(4096);
    if (text.length > block.length) throw new Error('control commands do not fit in 4 KiB');
    text.copy(block);
    const handle = await open(this.disk, 'r+');
    try {
      await handle.write(block, 0, block.length, area.offset);
    } finally {
      await handle.close();
    }
  }

  async boot(options: BootOptions = {}): Promise<BootRecord> {
    const timeoutMs = options.timeoutMs ?? 180_000;
    const started = Date.now();
    const logPath = join(this.dir, `serial-${started}.log`);
    const logFile = createWriteStream(logPath);
    // its own process group, so the power cut and the timeout kill QEMU and nothing else
    // `timeout` too, so QEMU cannot outlive a crashed test runner by more than a minute
    const qemu = spawn(
      'timeout',
      [
        '-s',
        'KILL',
        String(Math.ceil(timeoutMs / 1000) + 60),
        this.qemuCommand(),
        ...this.qemuArgs(['-monitor', 'none', '-serial', 'stdio'], options.allowReset, options.drive),
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    let stderr = '';
    let end: BootRecord['end'] = 'poweroff';
    const kill = (reason: BootRecord['end']): void => {
      if (qemu.exitCode !== null || qemu.signalCode !== null) return;
      end = reason;
      try {
        process.kill(-(qemu.pid as number), 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    qemu.stdout.on('data', (chunk: Buffer) => {
      log += chunk.toString('latin1');
      logFile.write(chunk);
      if (options.cutPowerOn && matches(log, options.cutPowerOn)) kill('power-cut');
      // u-boot's prompt after "no bootable snapshot": nothing more will happen
      if (/cowroot: no bootable snapshot[^\n]*\n[\s\S]*=> $/.test(log)) kill('timeout');
    });
    qemu.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      qemu.on('error', reject);
      qemu.on('close', (exitCode) => resolve(exitCode));
    });
    clearTimeout(timer);
    await new Promise<void>((resolve) => logFile.end(() => resolve()));
    if (end === 'poweroff' && code !== 0) throw new Error(`qemu exited with ${code}: ${stderr}\n${log.slice(-2000)}`);
    const seconds = (Date.now() - started) / 1000;
    this.bootSeconds.push(seconds);
    return parseBootLog(log, end, seconds);
  }

  /** The two env copies as stored on the FAT partition, read with fw_printenv through a fw_env.config. */
  async readEnv(): Promise<Record<string, string>> {
    const dir = await this.copyEnvOut();
    return new UbootEnv(join(dir, 'fw_env.config')).readAll();
  }

  /**
   * One env write from the host, through the device core's own adapter (fw_setenv -s on the copies taken
   * off the FAT partition, both put back): stands for the agent's write when a scenario does not need the
   * guest to make it.
   */
  async writeEnv(update: EnvUpdate | Record<string, string>): Promise<void> {
    const dir = await this.copyEnvOut();
    await new UbootEnv(join(dir, 'fw_env.config')).write(update);
    await run('mcopy', ['-o', '-i', this.fatImage(), join(dir, 'uboot.env'), join(dir, 'uboot-redund.env'), '::/']);
  }

  /** The raw bytes of both env copies, to prove a boot wrote nothing. */
  async envBytes(): Promise<Buffer> {
    const dir = await this.copyEnvOut();
    return Buffer.concat([await readFile(join(dir, 'uboot.env')), await readFile(join(dir, 'uboot-redund.env'))]);
  }

  /**
   * Overwrites the CRC of one env copy, as a power cut in the middle of writing it would leave it.
   * `newer`/`older` pick by the redundant-env serial (flag byte after the CRC).
   */
  async corruptEnvCopy(which: 'newer' | 'older'): Promise<string> {
    const dir = await this.copyEnvOut();
    const names = ['uboot.env', 'uboot-redund.env'];
    const flags = await Promise.all(names.map(async (n) => (await readFile(join(dir, n)))[4]));
    const newerIndex = serialIsNewer(flags[0], flags[1]) ? 0 : 1;
    const name = names[which === 'newer' ? newerIndex : 1 - newerIndex];
    const bytes = await readFile(join(dir, name));
    for (let i = 0; i < 4; i++) bytes[i] ^= 0xff;
    bytes.write('torn write', 64);
    await writeFile(join(dir, name), bytes);
    await run('mcopy', ['-o', '-i', this.fatImage(), join(dir, name), `::/${name}`]);
    return name;
  }

  /**
   * Mounts the btrfs pool (top level, read-only) through a loop device limited to partition 2, runs `fn`,
   * and always unmounts and detaches. QEMU must not be running.
   */
  async withPool<T>(fn: (mountPoint: string) => Promise<T>): Promise<T> {
    const pool = this.partition(2);
    const mountPoint = join(this.dir, 'pool');
    await mkdir(mountPoint, { recursive: true });
    const loop = (
      await run('losetup', [
        '--find',
        '--show',
        '--read-only',
        '-o',
        String(pool.offset),
        '--sizelimit',
        String(pool.size),
        this.disk,
      ])
    ).trim();
    try {
      // a guest killed after an fsync leaves a log tree that a read-only loop device cannot replay; u-boot
      // never replays it either, so the pool is read as u-boot reads it
      await run('mount', ['-t', 'btrfs', '-o', 'ro,rescue=nologreplay,subvolid=5', loop, mountPoint]);
      try {
        return await fn(mountPoint);
      } finally {
        await run('umount', [mountPoint]);
      }
    } finally {
      await run('losetup', ['-d', loop]);
    }
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private fatImage(): string {
    return `${this.disk}@@${this.partition(1).offset}`;
  }

  private async copyEnvOut(): Promise<string> {
    const dir = join(this.dir, 'env');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await run('mcopy', ['-n', '-i', this.fatImage(), '::/uboot.env', '::/uboot-redund.env', dir]);
    await writeFile(
      join(dir, 'fw_env.config'),
      `${join(dir, 'uboot.env')} 0x0 0x4000\n${join(dir, 'uboot-redund.env')} 0x0 0x4000\n`,
    );
    return dir;
  }
}

function matches(text: string, pattern: string | RegExp): boolean {
  return typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
}

/** u-boot's incremental redundant-env serial: 255 → 0 wraps (env/common.c env_import_redund). */
function serialIsNewer(a: number, b: number): boolean {
  if (a === 255 && b === 0) return false;
  if (a === 0 && b === 255) return true;
  return a >= b;
}

export function parseBootLog(log: string, end: BootRecord['end'], seconds: number): BootRecord {
  const ubootLines = [...log.matchAll(/cowroot: booting snapshot (\S+) trial=(\d)/g)];
  const lastUboot = ubootLines[ubootLines.length - 1];
  const linuxLines = [...log.matchAll(/COWROOT-BOOTED snapshot=(\S*) trial=(\S*) release=(\S*) scratch=(\S*)/g)];
  const linux = linuxLines[linuxLines.length - 1];
  return {
    log,
    end,
    seconds,
    uboot: lastUboot ? { snapshot: lastUboot[1], trial: lastUboot[2] } : null,
    linux: linux ? { snapshot: linux[1], trial: linux[2], release: linux[3], scratch: linux[4] } : null,
    reachedPrompt: /\n=> /.test(log) || log.includes('cowroot: no bootable snapshot'),
  };
}
