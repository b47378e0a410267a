import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { VdevBoard } from './vdev-artifacts';

/** A TCP service on the host's loopback that the guest reaches at `guestPort` of GUEST_SERVER_ADDRESS. */
export interface GuestForward {
  guestPort: number;
  hostPort: number;
}

/**
 * The address the guest dials for the fleet server: inside QEMU's user network only (slirp), forwarded by
 * `guestfwd` to 127.0.0.1 on the host. With `restrict=on` the guest reaches nothing else.
 */
export const GUEST_SERVER_ADDRESS = '10.0.2.100';

/**
 * How each board's Debian guest is emulated. x86: qemu-system-x86_64, as Debian's amd64 kernel is 64-bit
 * (the 32-bit u-boot zboots it unchanged), no emulated VGA (drawing an unseen screen costs TCG time). arm64:
 * QEMU virt, RAM from 0x40000000 (the board profile's load addresses), cortex-a57 as `max` emulates
 * pointer authentication and costs TCG time, the PL011 as ttyAMA0. Both take the NIC on virtio-net-pci
 * (virt has a PCIe host bridge, and the guest's initrd brings virtio_pci for the disk anyway).
 */
export const DEBIAN_QEMU: Record<VdevBoard, { command: string; machine: string[] }> = {
  x86: { command: 'qemu-system-x86_64', machine: ['-vga', 'none'] },
  arm64: { command: 'qemu-system-aarch64', machine: ['-machine', 'virt', '-cpu', 'cortex-a57'] },
};

export interface DebianDeviceOptions {
  board: VdevBoard;
  /** u-boot's firmware of the board (build-artifacts.sh <board>): u-boot.rom (x86) or u-boot.bin (arm64) */
  uBootRom: string;
  disk: string;
  forwards: GuestForward[];
  /** where the serial console is written as it comes (kept next to the disk for a failing run) */
  logFile: string;
  memoryMiB?: number;
}

/** One power-on to reset span of the console: from a u-boot banner to the next one (or to now). */
export interface BootSpan {
  start: number;
  /** wall-clock ms from the u-boot banner to the next banner (a reboot), or null while it still runs */
  ms: number | null;
}

/**
 * The virtual device with the real Debian guest: a factory-image disk booted by the real u-boot of the
 * board (DEBIAN_QEMU: x86 zboots the bzImage behind the uImage header, arm64 bootm's the uImage and
 * uInitrd with QEMU's device tree). Unlike VirtualDevice.boot, one QEMU process lives across the guest's own reboots
 * (no -no-reboot): the agent reboots the device itself, and the test follows on the serial console and the
 * server. TCG unless COWROOT_VDEV_ACCEL=kvm (kvmUsable).
 */
export class DebianDevice {
  private qemu: ChildProcess | null = null;
  private out: WriteStream | null = null;
  private text = '';
  private readonly banners: { offset: number; at: number }[] = [];
  /** KVM can only run the host's own arch: the arm64 board is always TCG on this x86 host */
  readonly accel: 'kvm' | 'tcg';

  constructor(private readonly options: DebianDeviceOptions) {
    this.accel = options.board === 'x86' && kvmUsable() ? 'kvm' : 'tcg';
  }

  /** QEMU's arguments (argument array; the guestfwd command is QEMU's own `cmd:` chardev, run per connection). */
  qemuArgs(): string[] {
    const qemu = DEBIAN_QEMU[this.options.board];
    const forwards = this.options.forwards
      .map((f) => `,guestfwd=tcp:${GUEST_SERVER_ADDRESS}:${f.guestPort}-cmd:socat STDIO TCP:127.0.0.1:${f.hostPort}`)
      .join('');
    return [
      ...['-accel', this.accel, ...qemu.machine, '-m', String(this.options.memoryMiB ?? 1024), '-smp', '1'],
      ...['-display', 'none', '-monitor', 'none', '-serial', 'stdio'],
      ...['-nic', `user,model=virtio-net-pci,restrict=on${forwards}`],
      ...['-bios', this.options.uBootRom, '-drive', `file=${this.options.disk},if=virtio,format=raw`],
    ];
  }

  /** Powers the device on; it then runs (and reboots itself) until stop(). */
  start(): void {
    if (this.qemu) throw new Error('the device is already running');
    this.out = createWriteStream(this.options.logFile, { flags: 'a' });
    // its own process group, so stop() kills QEMU and its socat children and nothing else
    this.qemu = spawn(DEBIAN_QEMU[this.options.board].command, this.qemuArgs(), {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.qemu.stdout!.on('data', (chunk: Buffer) => {
      const before = this.text.length;
      this.text += chunk.toString('latin1');
      this.out?.write(chunk);
      // a banner split across chunks is found from a little before this chunk
      const from = Math.max(0, before - 32);
      for (const match of this.text.slice(from).matchAll(/U-Boot 20\d\d\.\d\d/g)) {
        const offset = from + (match.index ?? 0);
        if (!this.banners.some((b) => b.offset === offset)) this.banners.push({ offset, at: Date.now() });
      }
    });
    this.qemu.stderr!.on('data', (chunk: Buffer) => this.out?.write(chunk));
  }

  get log(): string {
    return this.text;
  }

  get running(): boolean {
    return this.qemu !== null && this.qemu.exitCode === null && this.qemu.signalCode === null;
  }

  /** Every u-boot start seen so far, with how long each boot lasted until the next reset. */
  boots(): BootSpan[] {
    return this.banners.map((b, i) => ({
      start: b.offset,
      ms: i + 1 < this.banners.length ? this.banners[i + 1].at - b.at : null,
    }));
  }

  /** ms since the last u-boot banner */
  msSinceLastBoot(): number {
    const last = this.banners[this.banners.length - 1];
    return last ? Date.now() - last.at : 0;
  }

  /** Waits for `pattern` on the console at or after `from` (a log offset); returns the match's end offset. */
  async waitFor(pattern: RegExp, from: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const flags = pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`;
    for (;;) {
      const re = new RegExp(pattern.source, flags);
      re.lastIndex = from;
      const match = re.exec(this.text);
      if (match) return match.index + match[0].length;
      if (!this.running) throw new Error(`QEMU ended before ${pattern} appeared:\n${this.text.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${this.text.slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Pulls the plug (the guest has synced what matters: every agent write is fsynced) and waits for QEMU. */
  async stop(): Promise<void> {
    const qemu = this.qemu;
    if (!qemu) return;
    if (this.running) {
      const exited = new Promise((resolve) => qemu.once('close', resolve));
      try {
        process.kill(-(qemu.pid as number), 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
    this.qemu = null;
    await new Promise<void>((resolve) => (this.out ? this.out.end(() => resolve()) : resolve()));
    this.out = null;
  }
}

/**
 * KVM only when asked (COWROOT_VDEV_ACCEL=kvm) and /dev/kvm is there: on this project's CI machine (a
 * nested VM) KVM stops u-boot with "KVM internal error ... emulation failure" on an iret, and `-cpu host`
 * fails on an MSR, so TCG is the default, as for VirtualDevice.
 */
function kvmUsable(): boolean {
  if (process.env.COWROOT_VDEV_ACCEL !== 'kvm') return false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export const serialLogPath = (dir: string): string => join(dir, 'serial.log');
