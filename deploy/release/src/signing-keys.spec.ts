import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signManifest, verifyManifestSignature } from '@cowroot/protocol';
import { ReleaseErrorCode } from './release-error';
import { SigningKeys } from './signing-keys';

describe(SigningKeys.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates an ed25519 pair, private key mode 0600, usable with the protocol sign/verify', async () => {
    const files = await SigningKeys.generate(join(dir, 'release'));
    expect(files).toEqual({ privateKey: join(dir, 'release.key'), publicKey: join(dir, 'release.pub') });
    expect((await stat(files.privateKey)).mode & 0o777).toBe(0o600);
    expect(await readFile(files.privateKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await readFile(files.publicKey, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const bytes = Buffer.from('{"format":"cowroot-artifact/1"}');
    const signature = signManifest(bytes, await SigningKeys.loadPrivate(files.privateKey));
    expect(verifyManifestSignature(bytes, signature, await SigningKeys.loadPublic(files.publicKey))).toBe(true);
  });

  it('creates missing parent directories, owner-only (keygen --out keys/release in a fresh checkout)', async () => {
    const files = await SigningKeys.generate(join(dir, 'keys', 'nested', 'release'));
    expect(files.privateKey).toBe(join(dir, 'keys', 'nested', 'release.key'));
    expect(await readFile(files.publicKey, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'keys', 'nested'))).mode & 0o777).toBe(0o700);
  });

  it('says which directory it cannot create', async () => {
    await writeFile(join(dir, 'plain-file'), 'not a directory');
    await expect(SigningKeys.generate(join(dir, 'plain-file', 'keys', 'release'))).rejects.toMatchObject({
      code: ReleaseErrorCode.KeyUnreadable,
      message: `cannot create the directory ${join(dir, 'plain-file', 'keys')} (ENOTDIR)`,
    });
  });

  it('never overwrites either file of an existing pair', async () => {
    await writeFile(join(dir, 'release.pub'), 'keep me');
    await expect(SigningKeys.generate(join(dir, 'release'))).rejects.toMatchObject({
      code: ReleaseErrorCode.OutputExists,
    });
    expect(await readFile(join(dir, 'release.pub'), 'utf8')).toBe('keep me');
    // the private key it had started is not left behind without its public half
    await expect(stat(join(dir, 'release.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('explains a missing, unreadable, non-PEM or non-ed25519 key', async () => {
    await expect(SigningKeys.loadPrivate(join(dir, 'nope.key'))).rejects.toMatchObject({
      code: ReleaseErrorCode.KeyMissing,
      message: expect.stringMatching(/keygen/),
    });
    await expect(SigningKeys.loadPrivate(dir)).rejects.toMatchObject({ code: ReleaseErrorCode.KeyUnreadable });
    await writeFile(join(dir, 'junk.key'), 'hello');
    await expect(SigningKeys.loadPrivate(join(dir, 'junk.key'))).rejects.toMatchObject({
      code: ReleaseErrorCode.KeyInvalid,
    });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'ec.key'), ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(SigningKeys.loadPrivate(join(dir, 'ec.key'))).rejects.toMatchObject({
      code: ReleaseErrorCode.KeyInvalid,
      message: expect.stringMatching(/is ec, .*ed25519/),
    });
    await writeFile(join(dir, 'ec.pub'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
    await expect(SigningKeys.loadPublic(join(dir, 'ec.pub'))).rejects.toMatchObject({
      code: ReleaseErrorCode.KeyInvalid,
    });
  });
});
