import { CommandRunner } from '@cowroot/device';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactWriter } from './artifact-writer.service';
import { ReleaseErrorCode, asReleaseError } from './release-error';

describe(ArtifactWriter.name, () => {
  const runner = new CommandRunner();
  const writer = new ArtifactWriter(runner, 3);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-writer-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes `producer | zstd` to the file and reports the size and sha256 of what is on disk', async () => {
    const path = join(dir, 'a.btrfs.zst');
    // stands in for `btrfs send`: 3 MiB on stdout, more than the runner would keep in memory for a command
    const send = { command: 'sh', args: ['-c', 'head -c 3145728 /dev/zero; printf end'] };
    const written = await writer.write(send, path);
    const bytes = await readFile(path);
    expect(written).toEqual({ path, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    const { stdout } = await runner.run('sh', ['-c', 'zstd -q -d -c | tail -c 3'], { stdin: { file: path } });
    expect(stdout).toBe('end');
  });

  it("fails with the producer's error and leaves no partial artifact when the producer fails", async () => {
    const path = join(dir, 'b.btrfs.zst');
    const send = {
      command: 'sh',
      args: ['-c', 'head -c 100000 /dev/zero; echo "ERROR: send ioctl failed" >&2; exit 1'],
    };
    const error = await writer.write(send, path).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(asReleaseError(error)).toMatchObject({
      code: ReleaseErrorCode.CommandFailed,
      message: expect.stringMatching(/^zstd .*input filter failed: sh -c .*exit code 1.*send ioctl failed/s),
    });
    expect(existsSync(path)).toBe(false);
  });

  it('never overwrites an existing artifact', async () => {
    const path = join(dir, 'c.btrfs.zst');
    await writeFile(path, 'published');
    await expect(writer.write({ command: 'printf', args: ['x'] }, path)).rejects.toMatchObject({
      code: ReleaseErrorCode.OutputExists,
    });
    await expect(readFile(path, 'utf8')).resolves.toBe('published');
  });
});
