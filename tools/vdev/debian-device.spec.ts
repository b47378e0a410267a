import { DebianDevice } from './debian-device';

const options = {
  uBootRom: '/cache/u-boot.bin',
  disk: '/work/disk.img',
  forwards: [{ guestPort: 1883, hostPort: 41883 }],
  logFile: '/work/serial.log',
};
/** the value after `flag` in an argument array (QEMU's `-flag value` pairs) */
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe(DebianDevice.name, () => {
  const accel = process.env.COWROOT_VDEV_ACCEL;
  afterEach(() => {
    if (accel === undefined) delete process.env.COWROOT_VDEV_ACCEL;
    else process.env.COWROOT_VDEV_ACCEL = accel;
  });

  it('boots the arm64 board as QEMU virt with a cortex-a57, its u-boot as -bios, the disk and NIC on virtio', () => {
    const args = new DebianDevice({ board: 'arm64', ...options }).qemuArgs();
    expect(after(args, '-machine')).toBe('virt');
    expect(after(args, '-cpu')).toBe('cortex-a57');
    expect(after(args, '-bios')).toBe('/cache/u-boot.bin');
    expect(after(args, '-drive')).toBe('file=/work/disk.img,if=virtio,format=raw');
    expect(after(args, '-nic')).toBe(
      'user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:1883-cmd:socat STDIO TCP:127.0.0.1:41883',
    );
    // virt has no VGA to switch off; `-vga none` is the x86 PC's
    expect(args).not.toContain('-vga');
  });

  it('keeps the x86 board a PC without VGA, and never asks KVM for arm64 on this x86 host', () => {
    process.env.COWROOT_VDEV_ACCEL = 'kvm';
    const x86 = new DebianDevice({ board: 'x86', ...options }).qemuArgs();
    expect(after(x86, '-vga')).toBe('none');
    expect(x86).not.toContain('-machine');
    const arm64 = new DebianDevice({ board: 'arm64', ...options });
    expect(arm64.accel).toBe('tcg');
    expect(after(arm64.qemuArgs(), '-accel')).toBe('tcg');
  });
});
