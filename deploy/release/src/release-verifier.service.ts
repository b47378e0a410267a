import { ArtifactManifest, parseManifest, verifyManifestSignature } from '@cowroot/protocol';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { DigestingStream } from './digesting-stream';
import { ReleaseError, ReleaseErrorCode } from './release-error';
import { SigningKeys } from './signing-keys';

export interface VerifyRequest {
  manifest: string;
  signature: string;
  publicKey: string;
  artifact?: string;
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(resolve(path));
  } catch (error) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `${what} ${resolve(path)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

/** Checks a manifest the way a device does: signature over the exact bytes, format, then the artifact. */
export class ReleaseVerifier {
  async verify(request: VerifyRequest): Promise<ArtifactManifest> {
    const key = await SigningKeys.loadPublic(request.publicKey);
    const bytes = await readInput(request.manifest, 'manifest');
    const signature = (await readInput(request.signature, 'signature')).toString('utf8').trim();
    if (!verifyManifestSignature(bytes, signature, key)) {
      throw new ReleaseError(
        ReleaseErrorCode.VerificationFailed,
        `signature ${resolve(request.signature)} does not match manifest ${resolve(request.manifest)} for this public key`,
      );
    }
    const parsed = parseManifest(bytes);
    if (!parsed.ok) {
      throw new ReleaseError(
        ReleaseErrorCode.VerificationFailed,
        `manifest ${resolve(request.manifest)} is signed but invalid: ${parsed.message}`,
      );
    }
    if (request.artifact) await this.checkArtifact(resolve(request.artifact), parsed.value);
    return parsed.value;
  }

  private async checkArtifact(path: string, manifest: ArtifactManifest): Promise<void> {
    const digest = new DigestingStream();
    const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
    try {
      await pipeline(createReadStream(path), digest, discard);
    } catch (error) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `artifact ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
    const { size, sha256 } = digest.result();
    if (size !== manifest.size) {
      throw new ReleaseError(
        ReleaseErrorCode.VerificationFailed,
        `artifact ${path} has ${size} bytes, the manifest says ${manifest.size}`,
      );
    }
    if (sha256 !== manifest.sha256) {
      throw new ReleaseError(
        ReleaseErrorCode.VerificationFailed,
        `artifact ${path} has sha256 ${sha256}, the manifest says ${manifest.sha256}`,
      );
    }
  }
}
