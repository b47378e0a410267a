import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ReleaseError, ReleaseErrorCode } from './release-error';

export interface KeyPairFiles {
  privateKey: string;
  publicKey: string;
}

const KEYGEN_HINT = 'create a pair with: cowroot-release keygen --out <prefix>';

async function readKeyFile(path: string, role: 'private' | 'public'): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ReleaseError(ReleaseErrorCode.KeyMissing, `${role} key ${path} does not exist; ${KEYGEN_HINT}`);
    }
    throw new ReleaseError(
      ReleaseErrorCode.KeyUnreadable,
      `${role} key ${path} cannot be read (${code ?? (error as Error).message}); check its path and permissions`,
    );
  }
}

function requireEd25519(key: KeyObject, path: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ReleaseError(
      ReleaseErrorCode.KeyInvalid,
      `key ${path} is ${key.asymmetricKeyType ?? 'not asymmetric'}, manifests are signed with ed25519; ${KEYGEN_HINT}`,
    );
  }
  return key;
}

/**
 * The ed25519 keys that sign release manifests: PKCS#8 PEM private key (mode 0600) and SPKI PEM public key,
 * the form `signManifest`/`verifyManifestSignature` of @cowroot/protocol take and the server is given.
 */
export class SigningKeys {
  /**
   * `<prefix>.key` and `<prefix>.pub`; never overwrites an existing file. Missing parent directories are
   * created, readable by the owner only (`keygen --out keys/release` in a fresh checkout).
   */
  static async generate(prefix: string): Promise<KeyPairFiles> {
    const files = { privateKey: resolve(`${prefix}.key`), publicKey: resolve(`${prefix}.pub`) };
    await mkdir(dirname(files.privateKey), { recursive: true, mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      throw new ReleaseError(
        ReleaseErrorCode.KeyUnreadable,
        `cannot create the directory ${dirname(files.privateKey)} (${error.code ?? error.message})`,
      );
    });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const created: string[] = [];
    try {
      // 'wx' fails when the file exists, so an existing key is never replaced, even in a race
      for (const [path, text, mode] of [
        [files.privateKey, privateKey, 0o600],
        [files.publicKey, publicKey, 0o644],
      ] as const) {
        const handle = await open(path, 'wx', mode).catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'EEXIST') {
            throw new ReleaseError(
              ReleaseErrorCode.OutputExists,
              `${path} already exists; refusing to overwrite a key (choose another --out prefix)`,
            );
          }
          throw new ReleaseError(
            ReleaseErrorCode.KeyUnreadable,
            `cannot create ${path} (${error.code ?? error.message})`,
          );
        });
        created.push(path);
        try {
          await handle.chmod(mode); // open's mode passes through the umask: set it exactly
          await handle.writeFile(text);
        } finally {
          await handle.close();
        }
      }
    } catch (error) {
      await Promise.all(created.map((path) => rm(path, { force: true })));
      throw error;
    }
    return files;
  }

  static async loadPrivate(path: string): Promise<KeyObject> {
    const absolute = resolve(path);
    const text = await readKeyFile(absolute, 'private');
    let key: KeyObject;
    try {
      key = createPrivateKey(text);
    } catch {
      throw new ReleaseError(
        ReleaseErrorCode.KeyInvalid,
        `${absolute} is not a PEM private key (a public key given as --key?); ${KEYGEN_HINT}`,
      );
    }
    return requireEd25519(key, absolute);
  }

  static async loadPublic(path: string): Promise<KeyObject> {
    const absolute = resolve(path);
    const text = await readKeyFile(absolute, 'public');
    let key: KeyObject;
    try {
      // a private key also yields its public half, which is handy for a local check
      key = createPublicKey(text);
    } catch {
      throw new ReleaseError(ReleaseErrorCode.KeyInvalid, `${absolute} is not a PEM public key`);
    }
    return requireEd25519(key, absolute);
  }
}
