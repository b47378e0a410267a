import { createPrivateKey, createPublicKey, KeyObject, sign, verify } from 'node:crypto';
import { plainToInstance, Type } from 'class-transformer';
import {
  IsEnum,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { BTRFS_UUID_PATTERN, SHA256_HEX_PATTERN } from './identifiers';
import { ReleaseRef } from './messages/common';
import { ParseResult, describeValidationErrors } from './parse';
import { ErrorCode } from './error-codes';

/** docs/protocol.md §8: the signed description of one artifact (one btrfs send stream). */
export const MANIFEST_FORMAT = 'cowroot-artifact/1';

export enum ArtifactKind {
  Full = 'full',
  Incremental = 'incremental',
  /** an incremental stream whose changed files carry binary patches against the parent (docs/protocol.md §8) */
  Delta = 'delta',
}

/** What a delta artifact rebuilds to on the device: the plain incremental stream, uncompressed. */
export class ReconstructedStream {
  @IsInt()
  @Min(1)
  size!: number;

  @Matches(SHA256_HEX_PATTERN)
  sha256!: string;
}

export class ParentRef {
  @ValidateNested()
  @Type(() => ReleaseRef)
  release!: ReleaseRef;

  /** UUID of the parent's read-only snapshot on the build host = its received_uuid on a device */
  @Matches(BTRFS_UUID_PATTERN)
  snapshotUuid!: string;
}

/** The highest delta format a manifest may name (the release tool writes 1 … 3). */
export const MAX_DELTA_FORMAT = 3;

/** Security versions fit a signed 32-bit integer (what every database column and JSON parser holds). */
export const MAX_SECURITY_VERSION = 2_147_483_647;

export class ArtifactManifest {
  @IsIn([MANIFEST_FORMAT])
  format!: string;

  @ValidateNested()
  @Type(() => ReleaseRef)
  release!: ReleaseRef;

  @IsEnum(ArtifactKind)
  kind!: ArtifactKind;

  /** file name of the stream in the release directory */
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
  file!: string;

  /** bytes of the file as stored and downloaded */
  @IsInt()
  @Min(1)
  size!: number;

  @Matches(SHA256_HEX_PATTERN)
  sha256!: string;

  @IsIn(['zstd', 'none'])
  compression!: 'zstd' | 'none';

  /** UUID of the release's read-only snapshot on the build host = received_uuid after receive */
  @Matches(BTRFS_UUID_PATTERN)
  snapshotUuid!: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => ParentRef)
  parent!: ParentRef | null;

  @IsISO8601()
  createdAt!: string;

  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;

  /**
   * Downgrade protection (docs/protocol.md §8, docs/agent.md §4.3): a counter the operator raises for
   * every release that must not be undone, in the spirit of TUF/Uptane version numbers. A device refuses
   * to install or switch to a release below the highest security version it has accepted. Absent = 0.
   */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_SECURITY_VERSION)
  securityVersion?: number;

  /**
   * The operator's signed rollback allowance: devices whose floor is at most this value may take this
   * release although its securityVersion is below their floor. Never below securityVersion.
   */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_SECURITY_VERSION)
  allowRollbackFrom?: number;

  /** kind delta only: size and sha256 of the plain stream the device rebuilds and verifies */
  @IsOptional()
  @ValidateNested()
  @Type(() => ReconstructedStream)
  reconstructs?: ReconstructedStream;

  /**
   * kind delta only: the stream format of the delta (libs/device delta-format.ts), so the server offers it
   * only to devices that report reading it (docs/protocol.md §8). Absent in manifests built before the field
   * existed: the format is then unknown to the server.
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_DELTA_FORMAT)
  deltaFormat?: number;
}

/** Parses manifest bytes; a full stream must have no parent and an incremental one must have one. */
export function parseManifest(bytes: Buffer | string): ParseResult<ArtifactManifest> {
  let data: unknown;
  try {
    data = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (error) {
    return {
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: `manifest is not JSON: ${(error as Error).message}`,
    };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, code: ErrorCode.MalformedMessage, message: 'manifest must be a JSON object' };
  }
  const manifest = plainToInstance(ArtifactManifest, data);
  const errors = validateSync(manifest, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length > 0) {
    return { ok: false, code: ErrorCode.MalformedMessage, message: describeValidationErrors(errors).join('; ') };
  }
  if ((manifest.kind !== ArtifactKind.Full) !== Boolean(manifest.parent)) {
    return {
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: 'an incremental artifact needs a parent, a full one has none',
    };
  }
  if (manifest.allowRollbackFrom !== undefined && manifest.allowRollbackFrom < (manifest.securityVersion ?? 0)) {
    return {
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: 'allowRollbackFrom must not be below securityVersion',
    };
  }
  if ((manifest.kind === ArtifactKind.Delta) !== Boolean(manifest.reconstructs)) {
    return {
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: 'a delta artifact names the stream it reconstructs (reconstructs), other kinds do not',
    };
  }
  if (manifest.deltaFormat != null && manifest.kind !== ArtifactKind.Delta) {
    return {
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: 'only a delta artifact names a delta format (deltaFormat)',
    };
  }
  return { ok: true, value: manifest };
}

function toPublicKey(key: string | KeyObject): KeyObject {
  return typeof key === 'string' ? createPublicKey(key) : key;
}

/** Detached ed25519 signature of the exact manifest bytes, base64. */
export function signManifest(manifestBytes: Buffer, privateKey: string | KeyObject): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('manifest signing key must be ed25519');
  return sign(null, manifestBytes, key).toString('base64');
}

/** True only for a valid ed25519 signature by `publicKey` over these exact bytes. */
export function verifyManifestSignature(
  manifestBytes: Buffer,
  signatureBase64: string,
  publicKey: string | KeyObject,
): boolean {
  const key = toPublicKey(publicKey);
  if (key.asymmetricKeyType !== 'ed25519') return false;
  const signature = Buffer.from(signatureBase64, 'base64');
  if (signature.length !== 64) return false;
  try {
    return verify(null, manifestBytes, key, signature);
  } catch {
    return false;
  }
}
