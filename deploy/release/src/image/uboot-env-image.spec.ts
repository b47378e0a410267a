import { parseInitialEnv, renderFactoryEnv, renderFwEnvConfig } from './uboot-env-image';
import { uImageArch, uImageFitsArch } from './uimage-header';
import { renderAgentConfig } from './agent-config.renderer';
import type { BoardProfile } from './board-profile';

describe('renderFactoryEnv', () => {
  it('lays the profile over the board defaults, drops nulls, and sets the factory snapshot', () => {
    const text = renderFactoryEnv(
      { bootargs: 'root=/dev/sdb3', baudrate: '115200', bootcmd: 'run distro_bootcmd' },
      { bootargs: null, bootcmd: 'load virtio 0:1 ${scriptaddr} boot.scr && source ${scriptaddr}' },
      'base-1.0',
    );
    expect(text).toBe(
      'baudrate=115200\nbootcmd=load virtio 0:1 ${scriptaddr} boot.scr && source ${scriptaddr}\ncowroot_current=base-1.0\n',
    );
  });

  it('refuses a value with a newline (mkenvimage would split it into two variables)', () => {
    expect(() => renderFactoryEnv({}, { bootcmd: 'a\nb' }, 'x')).toThrow(/newline/);
  });
});

describe('parseInitialEnv', () => {
  it("reads u-boot's make u-boot-initial-env output and refuses a line that is not name=value", () => {
    expect(parseInitialEnv('arch=x86\nbootcmd=a=b; c\n\n')).toEqual({ arch: 'x86', bootcmd: 'a=b; c' });
    expect(() => parseInitialEnv('arch=x86\nnot a variable\n')).toThrow(/line 2 is not name=value/);
  });
});

describe('renderFwEnvConfig', () => {
  const base = { name: 'b' } as BoardProfile;
  it('names the FAT files where Linux mounts the boot partition', () => {
    const profile = {
      ...base,
      env: { kind: 'fat', sizeBytes: 0x4000, files: ['uboot.env', 'uboot-redund.env'], linuxMountPoint: '/uboot/' },
    } as BoardProfile;
    expect(renderFwEnvConfig(profile)).toMatch(
      /\n\/uboot\/uboot\.env\t0x0\t0x4000\n\/uboot\/uboot-redund\.env\t0x0\t0x4000\n$/,
    );
  });

  it('names the raw disk at both offsets', () => {
    const profile = {
      ...base,
      env: { kind: 'raw', sizeBytes: 0x2000, offsets: [0x100000, 0x200000], linuxDevice: '/dev/mmcblk0' },
    } as BoardProfile;
    expect(renderFwEnvConfig(profile)).toMatch(
      /\n\/dev\/mmcblk0\t0x100000\t0x2000\n\/dev\/mmcblk0\t0x200000\t0x2000\n$/,
    );
  });
});

describe('uImageArch', () => {
  const header = (arch: number) => {
    const bytes = Buffer.alloc(64);
    bytes.writeUInt32BE(0x27051956, 0);
    bytes[29] = arch;
    return bytes;
  };
  it('reads ih_arch of a legacy image header', () => {
    expect(uImageArch(header(3))).toBe('x86');
    expect(uImageArch(header(22))).toBe('arm64');
    expect(uImageFitsArch(header(2), 'arm')).toBe(true);
    expect(uImageFitsArch(header(2), 'x86')).toBe(false);
    expect(uImageArch(Buffer.alloc(64))).toBeNull();
  });
});

describe('renderAgentConfig', () => {
  it("points every device path into the pool's config/ and the health checks into the release", () => {
    const config = JSON.parse(
      renderAgentConfig({
        deviceId: 'gw-1',
        mqttUrl: 'mqtt://h:1883',
        httpUrl: 'http://h:3000',
        hasCa: true,
        poolMount: '/var/lib/cowroot/pool',
      }),
    ) as Record<string, unknown>;
    expect(config).toMatchObject({
      deviceId: 'gw-1',
      credentialFile: '/var/lib/cowroot/pool/config/credential',
      server: { mqttUrl: 'mqtt://h:1883', httpUrl: 'http://h:3000', caFile: '/var/lib/cowroot/pool/config/ca.pem' },
      fwEnvConfig: '/var/lib/cowroot/pool/config/fw_env.config',
      stateDir: '/var/lib/cowroot/pool/state/agent',
      health: { requiredDir: '/etc/cowroot/required.d' },
    });
  });
});
