// Operator-mode trust chain for a test NATS deployment, built with @nats-io/jwt instead of `nsc`
// (docs.nats.io "JWT authentication": operator signs accounts, an account signs its users; the server trusts
// only the operator). One system account (to push account updates) and one application account "COWROOT"
// with JetStream enabled, which the MQTT listener needs (docs.nats.io "MQTT": JetStream must be enabled for
// the account of an MQTT client).
import {
  createAccount,
  createOperator,
  createUser,
  decode,
  encodeAccount,
  encodeOperator,
  encodeUser,
  type Account,
  type KeyPair,
  type User,
} from '@nats-io/jwt';

const NO_LIMITS = {
  conn: -1,
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  leaf: -1,
} as const;

export interface IssuedUser {
  jwt: string;
  seed: Uint8Array;
  publicKey: string;
  issuedAt: number;
  /** unix seconds, when the JWT has an exp claim */
  expiresAt?: number;
}

export interface DeviceJwtOptions {
  /** seconds from now; absent = no expiry */
  expiresInSeconds?: number;
}

/** MQTT topic `a/b/c` is the NATS subject `a.b.c` (docs.nats.io "MQTT": topic to subject mapping). */
export function deviceSubjects(deviceId: string): string {
  return `cowroot.v1.devices.${deviceId}.>`;
}

export class NatsTrust {
  private revocations: Record<string, number> = {};

  private constructor(
    readonly operator: KeyPair,
    readonly operatorJwt: string,
    readonly systemAccount: KeyPair,
    readonly systemAccountJwt: string,
    readonly account: KeyPair,
    private accountJwtValue: string,
  ) {}

  static async create(): Promise<NatsTrust> {
    const operator = createOperator();
    const systemAccount = createAccount();
    const account = createAccount();
    const operatorJwt = await encodeOperator('cowroot-test', operator, {
      system_account: systemAccount.getPublicKey(),
    });
    // nats-server reads a missing limit as 0 (no connections, no subscriptions): state "unlimited" explicitly
    const systemAccountJwt = await encodeAccount('SYS', systemAccount, { limits: NO_LIMITS }, { signer: operator });
    const trust = new NatsTrust(operator, operatorJwt, systemAccount, systemAccountJwt, account, '');
    trust.accountJwtValue = await trust.encodeAppAccount();
    return trust;
  }

  get accountJwt(): string {
    return this.accountJwtValue;
  }

  /**
   * A device's bearer JWT: usable as an MQTT password without a nonce signature (bearer_token), limited to
   * MQTT connections and to the device's own subjects. `$MQTT.sub.>` is where NATS delivers QoS 1 messages
   * to the MQTT session's internal subscription, so the device must be allowed to subscribe to it.
   */
  async issueDeviceJwt(deviceId: string, options: DeviceJwtOptions = {}): Promise<IssuedUser> {
    const own = deviceSubjects(deviceId);
    return this.issueUser(
      `device-${deviceId}`,
      {
        bearer_token: true,
        allowed_connection_types: ['MQTT'],
        pub: { allow: [own] },
        sub: { allow: [own, '$MQTT.sub.>'] },
      },
      options.expiresInSeconds,
    );
  }

  /** A server replica's user (nkey-signed, not bearer) with the whole account's subject space. */
  async issueServiceUser(name: string): Promise<IssuedUser> {
    return this.issueUser(name, {}, undefined);
  }

  /** The system account's user, which may publish account JWT updates to the resolver. */
  async issueSystemUser(): Promise<IssuedUser> {
    const kp = createUser();
    const jwt = await encodeUser('sys', kp, this.systemAccount);
    return { jwt, seed: kp.getSeed(), publicKey: kp.getPublicKey(), issuedAt: decode(jwt).iat };
  }

  /**
   * Revoke every JWT of `userPublicKey` issued at or before `at` (unix seconds): nats-server compares the
   * user JWT's iat with the account's revocations entry. Returns the re-signed account JWT to push.
   */
  async revoke(userPublicKey: string, at = Math.floor(Date.now() / 1000)): Promise<string> {
    this.revocations[userPublicKey] = at;
    this.accountJwtValue = await this.encodeAppAccount();
    return this.accountJwtValue;
  }

  private async issueUser(name: string, claims: Partial<User>, expiresInSeconds?: number): Promise<IssuedUser> {
    const kp = createUser();
    const exp = expiresInSeconds === undefined ? undefined : Math.floor(Date.now() / 1000) + expiresInSeconds;
    const jwt = await encodeUser(name, kp, this.account, claims, exp === undefined ? {} : { exp });
    const decoded = decode(jwt);
    return { jwt, seed: kp.getSeed(), publicKey: kp.getPublicKey(), issuedAt: decoded.iat, expiresAt: decoded.exp };
  }

  private encodeAppAccount(): Promise<string> {
    const account: Partial<Account> = {
      // JetStream is on for the account only when its storage limits are non-zero (-1 = unlimited)
      limits: { ...NO_LIMITS, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
      revocations: { ...this.revocations },
    };
    return encodeAccount('COWROOT', this.account, account, { signer: this.operator });
  }
}
