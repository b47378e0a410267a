import { Injectable, Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';
import type { CredentialCheck } from './device-authenticator';

/** Where a credential was presented. */
export enum LoginChannel {
  RestBearer = 'rest_bearer',
  HttpBasic = 'http_basic',
  Mqtt = 'mqtt',
}

/** Why a login failed; `throttled` = refused unchecked because the source or identity failed too often. */
export enum LoginFailure {
  Malformed = 'malformed',
  UnknownToken = 'unknown_token',
  /** unknown device id, wrong credential or decommissioned device: one answer to the client, three here */
  UnknownDevice = 'unknown_device',
  WrongCredential = 'wrong_credential',
  Decommissioned = 'decommissioned',
  Throttled = 'throttled',
}

/**
 * Token buckets of failed logins: each failure takes one token (see admit for when it is taken), a bucket
 * refills at `refillPerSecond` up to `burst`, and an empty bucket refuses further attempts until a token is
 * back. Only failures cost in the end, so a fleet behind one NAT address that reconnects after a server
 * restart is never throttled.
 */
export const LOGIN_THROTTLE = {
  /** per source address (all channels together) */
  source: { burst: 30, refillPerSecond: 0.5 },
  /** per identity (device id) */
  identity: { burst: 10, refillPerSecond: 1 / 6 },
  /** buckets kept; full buckets are dropped first, then the oldest */
  maxBuckets: 100_000,
} as const;

/** The failure reason of a device credential check that did not pass. */
export function credentialFailure(
  result: Exclude<CredentialCheck, 'ok'>,
): Exclude<LoginFailure, LoginFailure.Throttled> {
  switch (result) {
    case 'unknown':
      return LoginFailure.UnknownDevice;
    case 'wrong':
      return LoginFailure.WrongCredential;
    case 'decommissioned':
      return LoginFailure.Decommissioned;
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

export interface LoginAttempt {
  channel: LoginChannel;
  /** remote address of the connection */
  source: string;
  /** the device id, when the attempt names one */
  identity?: string;
}

/**
 * The one place failed logins are counted (cowroot_auth_failures_total{channel,reason}) and throttled, for
 * REST bearer tokens, device HTTP Basic and MQTT CONNECT alike.
 */
@Injectable()
export class LoginThrottle {
  private readonly logger = new Logger(LoginThrottle.name);
  private readonly failures: Counter<'channel' | 'reason'>;
  private readonly buckets = new Map<string, Bucket>();
  /** the bucket keys each admitted attempt took a token from */
  private readonly reserved = new WeakMap<LoginAttempt, string[]>();

  constructor(metrics: MetricsService) {
    this.failures = metrics.counter('cowroot_auth_failures_total', 'Failed logins by channel and reason', [
      'channel',
      'reason',
    ]);
  }

  /**
   * Call before checking a credential: 0 = go ahead, else the seconds to wait (counted as `throttled`).
   * Follow an admitted attempt with `fail` or `refund`. The identity's token is taken now, so concurrent
   * guesses at one device cannot all pass before their failures count. The source's token is taken now
   * only once that source has failed recently: a fleet behind one NAT address that reconnects all at once
   * after a server restart (hundreds of concurrent correct logins) must never be throttled, and a source
   * with a clean record pays for its failures when they happen.
   */
  admit(attempt: LoginAttempt): number {
    const keys = this.keys(attempt);
    const levels = keys.map(([key, policy]) => this.tokens(key, policy));
    const wait = Math.max(
      0,
      ...levels.map((tokens, i) => (tokens >= 1 ? 0 : Math.ceil((1 - tokens) / keys[i][1].refillPerSecond))),
    );
    if (wait > 0) {
      this.failures.inc({ channel: attempt.channel, reason: LoginFailure.Throttled });
      return wait;
    }
    const reserved = keys.filter(([key], i) => i > 0 || this.buckets.has(key)).map(([key]) => key);
    keys.forEach(([key], i) => reserved.includes(key) && this.store(key, levels[i] - 1));
    this.reserved.set(attempt, reserved);
    this.bound();
    return 0;
  }

  /** An admitted attempt failed: counted; its tokens stay taken, and those not taken yet are taken now. */
  fail(attempt: LoginAttempt, reason: Exclude<LoginFailure, LoginFailure.Throttled>): void {
    this.failures.inc({ channel: attempt.channel, reason });
    const reserved = this.reserved.get(attempt) ?? [];
    for (const [key, policy] of this.keys(attempt)) {
      if (!reserved.includes(key)) this.store(key, Math.max(0, this.tokens(key, policy) - 1));
    }
    this.reserved.delete(attempt);
    this.bound();
  }

  /** An admitted attempt succeeded (or could not be checked): the tokens it took are given back. */
  refund(attempt: LoginAttempt): void {
    const reserved = this.reserved.get(attempt) ?? [];
    this.reserved.delete(attempt);
    for (const [key, policy] of this.keys(attempt)) {
      if (!reserved.includes(key) || !this.buckets.has(key)) continue;
      const tokens = Math.min(policy.burst, this.tokens(key, policy) + 1);
      if (tokens >= policy.burst) this.buckets.delete(key);
      else this.store(key, tokens);
    }
  }

  private store(key: string, tokens: number): void {
    // re-inserted so that Map order is least recently failed first
    this.buckets.delete(key);
    this.buckets.set(key, { tokens, at: Date.now() });
  }

  private keys(attempt: LoginAttempt): Array<[string, { burst: number; refillPerSecond: number }]> {
    const keys: Array<[string, { burst: number; refillPerSecond: number }]> = [
      [`s:${attempt.source}`, LOGIN_THROTTLE.source],
    ];
    if (attempt.identity) keys.push([`i:${attempt.identity}`, LOGIN_THROTTLE.identity]);
    return keys;
  }

  private tokens(key: string, policy: { burst: number; refillPerSecond: number }): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return policy.burst;
    return Math.min(policy.burst, bucket.tokens + ((Date.now() - bucket.at) / 1000) * policy.refillPerSecond);
  }

  /**
   * A full bucket is the same as none, so those go first; past that the least recently failed, down to 90 %
   * of the bound so that the scan runs once per 10 % of new buckets, not on every failure.
   */
  private bound(): void {
    if (this.buckets.size <= LOGIN_THROTTLE.maxBuckets) return;
    for (const [key] of this.buckets) {
      const policy = key.startsWith('s:') ? LOGIN_THROTTLE.source : LOGIN_THROTTLE.identity;
      if (this.tokens(key, policy) >= policy.burst) this.buckets.delete(key);
    }
    const excess = this.buckets.size - Math.floor(LOGIN_THROTTLE.maxBuckets * 0.9);
    if (excess <= 0) return;
    let dropped = 0;
    for (const [key] of this.buckets) {
      if (dropped++ >= excess) break;
      this.buckets.delete(key);
    }
    this.logger.warn(`login throttle over ${LOGIN_THROTTLE.maxBuckets} buckets: dropped the ${excess} oldest`);
  }
}
