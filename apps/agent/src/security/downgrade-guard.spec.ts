import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '@cowroot/device';
import { AgentLogger } from '../logger';
import { DowngradeGuard } from './downgrade-guard';

describe(DowngradeGuard.name, () => {
  let dir: string;
  const logger = new AgentLogger('dev-1', () => undefined);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-security-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('raises the floor from the confirmed snapshot, never lowers it, and keeps it across restarts', async () => {
    const guard = new DowngradeGuard(dir, logger);
    await guard.load();
    await guard.remember('r5', { securityVersion: 5 });
    await guard.remember('r3', { securityVersion: 3 });
    await guard.settle('r5', new Set(['r5', 'r3']));
    expect(guard.floor).toBe(5);
    // booting the older one (a permitted rollback) does not lower it
    await guard.settle('r3', new Set(['r5', 'r3']));
    expect(guard.floor).toBe(5);

    const again = new DowngradeGuard(dir, logger);
    await again.load();
    expect(again.floor).toBe(5);
    expect(again.recordOf('r3')).toEqual({ securityVersion: 3 });
    expect(() => again.assertAllowed('switch to r3', again.recordOf('r3'))).toThrow(DeviceError);
    try {
      again.assertAllowed('switch to r3', again.recordOf('r3'));
    } catch (error) {
      expect((error as DeviceError).code).toBe(ErrorCode.DowngradeRefused);
    }
    // a snapshot it knows nothing of is security version 0
    expect(again.recordOf('factory')).toEqual({ securityVersion: 0 });
  });

  it('forgets snapshots that are gone, and keeps an unreadable file aside', async () => {
    const guard = new DowngradeGuard(dir, logger);
    await guard.remember('old', { securityVersion: 1 });
    await guard.settle(null, new Set());
    expect(guard.recordOf('old')).toEqual({ securityVersion: 0 });

    await writeFile(join(dir, 'security.json'), '{ torn');
    const fresh = new DowngradeGuard(dir, logger);
    await fresh.load();
    expect(fresh.floor).toBe(0);
    expect((await readdir(dir)).filter((name) => name.startsWith('security.json.corrupt-'))).toHaveLength(1);
  });
});
