import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { describePrivileged, requireCommand } from '@cowroot/testing';
import { DeviceError } from './device-error';
import { FileBackedEnv, createFileBackedEnv } from './file-backed-env';
import { ENV, requestTrial } from './switch-protocol';
import { UbootEnv } from './uboot-env.adapter';

/** Overwrites bytes inside the variable area of one env copy, as a torn write or bit rot would. */
async function corrupt(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(Buffer.from('garbage!'), 0, 8, 16);
  } finally {
    await handle.close();
  }
}

describePrivileged(
  'UbootEnv on a file-backed redundant env (real fw_printenv / fw_setenv)',
  [requireCommand('fw_printenv'), requireCommand('fw_setenv'), requireCommand('mkenvimage')],
  () => {
    let dir: string;
    let fileEnv: FileBackedEnv;
    let env: UbootEnv;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cowroot-env-test-'));
      fileEnv = await createFileBackedEnv(dir, { initial: { bootdelay: '0', [ENV.current]: 'rel-1' } });
      env = new UbootEnv(fileEnv.configPath);
    });

    afterEach(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('makes two copies of the configured size and a two-line fw_env.config', async () => {
      const config = await readFile(fileEnv.configPath, 'utf8');
      expect(config).toContain(`${fileEnv.copies[0]}\t0x0\t0x4000`);
      expect(config).toContain(`${fileEnv.copies[1]}\t0x0\t0x4000`);
      for (const copy of fileEnv.copies) expect((await readFile(copy)).length).toBe(0x4000);
    });

    it('reads variables, unset ones as empty', async () => {
      expect(await env.readAll()).toEqual({ bootdelay: '0', [ENV.current]: 'rel-1' });
      expect(await env.read([ENV.current, ENV.trial])).toEqual({ [ENV.current]: 'rel-1', [ENV.trial]: '' });
    });

    it('writes several variables in one call that rewrites exactly one copy, and deletes with ""', async () => {
      const before = await Promise.all(fileEnv.copies.map((c) => readFile(c)));
      await env.write({ ...requestTrial('rel-2'), [ENV.result]: 'accepted' });
      const after = await Promise.all(fileEnv.copies.map((c) => readFile(c)));
      // redundant env: the inactive copy takes the whole new env, the other keeps the old one intact
      expect(after.filter((copy, i) => !copy.equals(before[i]))).toHaveLength(1);
      expect(await env.readAll()).toEqual({
        bootdelay: '0',
        [ENV.current]: 'rel-1',
        [ENV.trial]: 'rel-2',
        [ENV.state]: 'requested',
        [ENV.result]: 'accepted',
      });
      await env.write({ [ENV.trial]: '', [ENV.state]: '' });
      expect(await env.readAll()).toEqual({ bootdelay: '0', [ENV.current]: 'rel-1', [ENV.result]: 'accepted' });
    });

    it('survives a corrupt copy: the other one is read, and the next write goes on', async () => {
      await env.write({ [ENV.current]: 'rel-2' }); // copy A: rel-1, copy B: rel-2 (active)
      const copies = await Promise.all(fileEnv.copies.map((c) => readFile(c)));
      const newest = copies[0].includes(Buffer.from('rel-2')) ? 0 : 1;

      // the newest copy torn (power cut during its write): the previous env is what u-boot and Linux see
      await corrupt(fileEnv.copies[newest]);
      expect((await env.read([ENV.current]))[ENV.current]).toBe('rel-1');

      // a write lands in the broken copy and makes it valid and active again
      await env.write({ [ENV.current]: 'rel-3' });
      expect((await env.read([ENV.current]))[ENV.current]).toBe('rel-3');

      // now the other copy rots: still readable
      await corrupt(fileEnv.copies[1 - newest]);
      expect((await env.read([ENV.current]))[ENV.current]).toBe('rel-3');
    });

    it('fails loudly, not with an empty env, when both copies are corrupt', async () => {
      await corrupt(fileEnv.copies[0]);
      await corrupt(fileEnv.copies[1]);
      await expect(env.readAll()).rejects.toBeInstanceOf(DeviceError);
      const error = (await env.write({ [ENV.trial]: 'x' }).catch((e: unknown) => e)) as DeviceError;
      expect(error.code).toBe(ErrorCode.EnvWriteFailed);
    });

    it('refuses values that would inject extra variables', async () => {
      const error = (await env
        .write({ [ENV.trial]: 'x\ncowroot_current=evil' })
        .catch((e: unknown) => e)) as DeviceError;
      expect(error.code).toBe(ErrorCode.EnvWriteFailed);
      expect((await env.read([ENV.current]))[ENV.current]).toBe('rel-1');
    });
  },
);
