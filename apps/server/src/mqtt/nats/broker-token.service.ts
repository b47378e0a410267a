import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Account, User, checkKey, decode, encodeAccount, encodeUser, type KeyPair } from '@nats-io/jwt';
import { readFile } from 'node:fs/promises';
import { DataSource } from 'typeorm';
import { NatsConfig, ServerConfig } from '../../config/server-config';
import { NatsConnections } from './nats-connections';
import { nativeSigningKey, nativeUserPublicKey } from './native-signing-key';

/** The JWT's name; presence and takeover detection read the device id back from it (`name_tag`). */
export const DEVICE_JWT_PREFIX = 'device-';

export interface IssuedBrokerToken {
  token: string;
  expiresAt: Date;
}

/** docs/scale-out.md: a device's subjects; `$MQTT.sub.>` is where NATS delivers its QoS 1 messages. */
export function devicePermissions(deviceId: string): Partial<User> {
  const own = `cowroot.v1.devices.${deviceId}.>`;
  return {
    bearer_token: true,
    allowed_connection_types: ['MQTT'],
    pub: { allow: [own] },
    sub: { allow: [own, '$MQTT.sub.>'] },
  };
}

/**
 * BROKER=nats: issues each device a short-lived bearer user JWT (its MQTT password) signed by the
 * application account's key, and revokes a device's JWTs by re-signing the account JWT with a revocation
 * entry for the device's user key and pushing it to the cluster's resolver. Every device has one user key
 * (device_broker_keys), so one revocation entry covers every JWT it was issued up to then.
 */
@Injectable()
export class BrokerTokenService implements OnModuleInit {
  private readonly options: NatsConfig;
  private accountSeed = '';
  /** signs the device JWTs natively (native-signing-key.ts: nkeys.js takes tens of ms a signature) */
  private accountSigner: KeyPair | null = null;
  private operatorSeed = '';
  private account: { name: string; publicKey: string; claims: Partial<Account> } | null = null;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly nats: NatsConnections,
    config: ServerConfig,
  ) {
    if (!config.nats) throw new Error('BrokerTokenService needs BROKER=nats');
    this.options = config.nats;
  }

  async onModuleInit(): Promise<void> {
    const read = async (file: string, what: string) => {
      try {
        return (await readFile(file, 'utf8')).trim();
      } catch (error) {
        throw new Error(`cannot read ${what} ${file}: ${(error as Error).message}`);
      }
    };
    this.accountSeed = await read(this.options.accountSeedFile, 'the NATS account seed');
    this.operatorSeed = await read(this.options.operatorSeedFile, 'the NATS operator seed');
    const accountKey = checkKey(this.accountSeed, 'A', true).getPublicKey();
    this.accountSigner = nativeSigningKey(this.accountSeed);
    checkKey(this.operatorSeed, 'O', true);
    const deployed = decode<Account>(await read(this.options.accountJwtFile, 'the NATS account JWT'));
    if (deployed.sub !== accountKey)
      throw new Error(`NATS_ACCOUNT_JWT_FILE is the JWT of ${deployed.sub}, not of the account seed's ${accountKey}`);
    this.account = { name: deployed.name, publicKey: accountKey, claims: deployed.nats };
  }

  /** The application account's public key (the `$SYS.ACCOUNT.<key>.…` events are about it). */
  get accountPublicKey(): string {
    if (!this.account) throw new Error('BrokerTokenService not initialised');
    return this.account.publicKey;
  }

  /** A fresh JWT for an active device (the caller has checked its credential). */
  async issue(deviceId: string): Promise<IssuedBrokerToken> {
    const key = await this.userKey(deviceId);
    // nats-server revokes JWTs with iat ≤ the revocation time (one-second resolution): a JWT issued in the
    // second of a revocation would be dead on arrival
    if (key.revokedAt !== null) {
      const wait = (Math.floor(key.revokedAt.getTime() / 1000) + 1) * 1000 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const exp = Math.floor(Date.now() / 1000) + this.options.deviceTokenTtlSeconds;
    const token = await encodeUser(
      `${DEVICE_JWT_PREFIX}${deviceId}`,
      key.publicKey,
      this.accountSigner ?? this.accountSeed,
      devicePermissions(deviceId),
      { exp },
    );
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /**
   * Revokes every JWT issued to the device so far: its connection on any node is closed and reconnects
   * with those JWTs are refused. False when the device was never issued one.
   */
  async revoke(deviceId: string): Promise<boolean> {
    const rows: Array<{ device_id: string }> = await this.dataSource.query(
      `UPDATE device_broker_keys SET revoked_at = now() WHERE device_id = $1 RETURNING device_id`,
      [deviceId],
    );
    if (rows.length === 0) return false;
    await this.pushAccount();
    return true;
  }

  /** Re-signs the account JWT with the revocations still in force and pushes it to the resolver. */
  async pushAccount(): Promise<void> {
    if (!this.account) throw new Error('BrokerTokenService not initialised');
    // a revocation outlives every JWT it covers by one TTL at most; older entries only bloat the JWT
    const revoked: Array<{ user_public_key: string; at: number }> = await this.dataSource.query(
      `SELECT user_public_key, floor(extract(epoch FROM revoked_at))::bigint AS at FROM device_broker_keys
        WHERE revoked_at > now() - make_interval(secs => $1)`,
      [this.options.deviceTokenTtlSeconds + 60],
    );
    const revocations = Object.fromEntries(revoked.map((row) => [row.user_public_key, Number(row.at)]));
    const jwt = await encodeAccount(
      this.account.name,
      this.account.publicKey,
      { ...this.account.claims, revocations },
      { signer: this.operatorSeed },
    );
    const reply = await this.nats.sys.request('$SYS.REQ.CLAIMS.UPDATE', new TextEncoder().encode(jwt), {
      timeout: 5000,
    });
    const answer = new TextDecoder().decode(reply.data);
    if (!answer.includes('jwt updated')) throw new Error(`NATS refused the account update: ${answer}`);
  }

  private async userKey(deviceId: string): Promise<{ publicKey: string; revokedAt: Date | null }> {
    const select = async () =>
      (
        (await this.dataSource.query(
          `SELECT user_public_key, revoked_at FROM device_broker_keys WHERE device_id = $1`,
          [deviceId],
        )) as Array<{ user_public_key: string; revoked_at: Date | null }>
      )[0];
    let row = await select();
    if (!row) {
      // bearer JWTs are never signed by the user: only its public key is kept, the private half is dropped
      await this.dataSource.query(
        `INSERT INTO device_broker_keys (device_id, user_public_key) VALUES ($1, $2) ON CONFLICT (device_id) DO NOTHING`,
        [deviceId, nativeUserPublicKey()],
      );
      row = await select();
    }
    return { publicKey: row.user_public_key, revokedAt: row.revoked_at };
  }
}
