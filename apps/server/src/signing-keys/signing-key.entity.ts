import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** An ed25519 public key whose signatures make a release artifact acceptable. */
@Entity({ name: 'signing_keys' })
export class SigningKey {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ name: 'public_key_pem', type: 'text' })
  publicKeyPem!: string;

  /** sha256 (hex) of the key's DER SubjectPublicKeyInfo: the same key cannot be registered twice */
  @Column({ type: 'text' })
  fingerprint!: string;

  @Column({ name: 'created_by', type: 'text' })
  createdBy!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoked_by', type: 'text', nullable: true })
  revokedBy!: string | null;
}
