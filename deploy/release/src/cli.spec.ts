import { signManifest } from '@cowroot/protocol';
import { createHash, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildManifestBytes } from './artifact-manifest.builder';
import { CliOutput, runCli } from './cli';
import { ReleaseRefArg } from './release-ref';

function capture(): CliOutput & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (line) => stdout.push(line), err: (line) => stderr.push(line) };
}

describe(runCli.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keygen then verify: a signed manifest and its artifact pass, one line each', async () => {
    const io = capture();
    expect(await runCli(['keygen', '--out', join(dir, 'k')], io)).toBe(0);
    const artifact = Buffer.from('pretend zstd stream');
    await writeFile(join(dir, 'a.btrfs.zst'), artifact);
    const manifest = buildManifestBytes({
      release: new ReleaseRefArg('demo', '1.0'),
      file: 'a.btrfs.zst',
      size: artifact.length,
      sha256: createHash('sha256').update(artifact).digest('hex'),
      snapshotUuid: 'b5cb5515-595e-af4c-96aa-40251a400c45',
      parent: null,
      createdAt: new Date(),
    });
    await writeFile(join(dir, 'a.manifest.json'), manifest);
    await writeFile(
      join(dir, 'a.manifest.sig'),
      `${signManifest(manifest, createPrivateKey(await readFile(join(dir, 'k.key'), 'utf8')))}\n`,
    );

    const verify = capture();
    const args = [
      'verify',
      '--manifest',
      join(dir, 'a.manifest.json'),
      '--signature',
      join(dir, 'a.manifest.sig'),
      '--public-key',
      join(dir, 'k.pub'),
    ];
    expect(await runCli([...args, '--artifact', join(dir, 'a.btrfs.zst')], verify)).toBe(0);
    expect(verify.stdout).toEqual([
      expect.stringMatching(/^signature ok: demo@1.0 full a.btrfs.zst$/),
      expect.stringMatching(/^artifact ok: 19 bytes/),
    ]);
    expect(verify.stderr).toEqual([]);

    await writeFile(join(dir, 'a.btrfs.zst'), 'pretend zstd streaM');
    const tampered = capture();
    expect(await runCli([...args, '--artifact', join(dir, 'a.btrfs.zst')], tampered)).toBe(1);
    expect(tampered.stderr).toEqual([
      expect.stringMatching(/^cowroot-release: artifact .* has sha256 [0-9a-f]{64}, the manifest says/),
    ]);
  });

  it('rejects usage errors before doing anything', async () => {
    const missing = capture();
    expect(await runCli(['build', '--name', 'demo'], missing)).toBe(1);
    expect(missing.stderr.join('\n')).toMatch(/required option '--rootfs <dir>' not specified/);

    const arch = capture();
    const build = [
      'build',
      '--rootfs',
      dir,
      '--pool',
      dir,
      '--name',
      'demo',
      '--version',
      '1',
      '--key',
      join(dir, 'k'),
      '--out',
      dir,
    ];
    expect(await runCli([...build, '--arch', 'mips'], arch)).toBe(1);
    expect(arch.stderr.join('\n')).toMatch(/Allowed choices are arm, arm64, x86/);

    const level = capture();
    expect(await runCli([...build, '--arch', 'x86', '--zstd-level', '30'], level)).toBe(1);
    expect(level.stderr).toEqual(['cowroot-release: --zstd-level must be 1-19, got 30']);

    const format = capture();
    expect(await runCli([...build, '--arch', 'x86', '--delta-format', '4'], format)).toBe(1);
    expect(format.stderr).toEqual(['cowroot-release: --delta-format must be 1, 2 or 3, got 4']);

    const security = capture();
    expect(await runCli([...build, '--arch', 'x86', '--security-version', '-1'], security)).toBe(1);
    expect(security.stderr).toEqual(['cowroot-release: --security-version must be an integer 0-2147483647, got -1']);

    const ref = capture();
    expect(await runCli([...build, '--arch', 'x86', '--base', 'demo-1.0'], ref)).toBe(1);
    expect(ref.stderr).toEqual([expect.stringMatching(/"demo-1.0" is not a release reference: write name@version/)]);
  });
});
