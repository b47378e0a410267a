import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { verifyManifestSignature } from '@cowroot/protocol';
import { createHash, createPublicKey, KeyObject } from 'node:crypto';
import { DataSource, IsNull } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { isUniqueViolation } from '../database/unique-violation';
import { SigningKey } from './signing-key.entity';

function parseEd25519PublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new DomainError(
      DomainErrorCode.SigningKeyInvalid,
      `publicKeyPem is not a PEM public key: ${(error as Error).message}`,
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new DomainError(
      DomainErrorCode.SigningKeyInvalid,
      `publicKeyPem must be an ed25519 key, got ${key.asymmetricKeyType}`,
    );
  }
  return key;
}

/** The keys whose signatures the server accepts on release manifests. */
@Injectable()
export class SigningKeysService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  async register(name: string, publicKeyPem: string, actor: Actor): Promise<SigningKey> {
    const key = parseEd25519PublicKey(publicKeyPem);
    const spki = key.export({ format: 'der', type: 'spki' });
    const fingerprint = createHash('sha256').update(spki).digest('hex');
    // Stored normalised, so what is listed is exactly the key that verifies.
    const normalisedPem = key.export({ format: 'pem', type: 'spki' }).toString();
    try {
      return await this.dataSource.transaction(async (manager) => {
        const saved = await manager.save(
          manager.create(SigningKey, {
            name,
            publicKeyPem: normalisedPem,
            fingerprint,
            createdBy: actor.id,
            revokedAt: null,
            revokedBy: null,
          }),
        );
        await this.audit.record(
          {
            actor,
            action: 'signing-key.added',
            subjectType: 'signing-key',
            subjectId: saved.id,
            after: { name, fingerprint },
          },
          manager,
        );
        return saved;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new DomainError(
          DomainErrorCode.SigningKeyExists,
          'a signing key with this name or this public key is already registered',
          {
            name,
            fingerprint,
          },
        );
      }
      throw error;
    }
  }

  list(): Promise<SigningKey[]> {
    return this.dataSource.getRepository(SigningKey).find({ order: { createdAt: 'ASC' } });
  }

  async revoke(id: string, actor: Actor): Promise<SigningKey> {
    return this.dataSource.transaction(async (manager) => {
      const key = await manager.findOne(SigningKey, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!key) throw new DomainError(DomainErrorCode.SigningKeyNotFound, `signing key ${id} not found`);
      if (key.revokedAt) return key;
      key.revokedAt = new Date();
      key.revokedBy = actor.id;
      await manager.save(key);
      await this.audit.record(
        {
          actor,
          action: 'signing-key.revoked',
          subjectType: 'signing-key',
          subjectId: id,
          before: { revokedAt: null },
          after: { name: key.name, fingerprint: key.fingerprint, revokedAt: key.revokedAt },
        },
        manager,
      );
      return key;
    });
  }

  /** The active (not revoked) key that signed these exact manifest bytes, or null. */
  async findSigner(manifestBytes: Buffer, signatureBase64: string): Promise<SigningKey | null> {
    const active = await this.dataSource.getRepository(SigningKey).find({ where: { revokedAt: IsNull() } });
    return active.find((key) => verifyManifestSignature(manifestBytes, signatureBase64, key.publicKeyPem)) ?? null;
  }
}
