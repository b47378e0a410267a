import { CanActivate, ExecutionContext, Inject, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { isDeviceId } from '@cowroot/protocol';
import type { Response } from 'express';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { Actor, deviceActor } from './actor';
import { ALLOW_DEVICES_KEY } from './allow-devices.decorator';
import type { AuthenticatedRequest } from './current-actor.decorator';
import { DEVICE_AUTHENTICATOR, DeviceAuthenticator } from './device-authenticator';
import { credentialFailure, LoginAttempt, LoginChannel, LoginFailure, LoginThrottle } from './login-throttle';
import { PUBLIC_KEY } from './public.decorator';
import { MIN_ROLE_KEY } from './roles.decorator';
import { Role, roleSatisfies } from './role.enum';
import { TokensService } from './tokens.service';
import { csrfProblem } from './csrf-check';
import { readCookie, SESSION_COOKIE } from './session-cookie';
import { WebSession, WebSessionsService } from './web-sessions.service';

/**
 * Global guard: every route needs an operator token (Bearer) with at least the route's role, unless it is
 * @Public; routes marked @AllowDevices also take a device's HTTP Basic credential. Failed logins are counted
 * and throttled by LoginThrottle. Without an Authorization header, the dashboard's session cookie counts
 * (SessionController), with the CSRF checks of csrf-check.ts on every request that changes state. It runs
 * before any request body is read (RequestInputInterceptor).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokensService,
    private readonly throttle: LoginThrottle,
    private readonly sessions: WebSessionsService,
    @Optional() @Inject(DEVICE_AUTHENTICATOR) private readonly devices?: DeviceAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest & { webSession?: WebSession }>();
    const header = request.headers.authorization ?? '';
    const sessionId = header ? null : readCookie(request.headers.cookie, SESSION_COOKIE);
    if (sessionId) {
      // a 256-bit random id cannot be guessed, so session lookups are not login attempts to throttle
      const session = await this.sessions.find(sessionId);
      if (!session) throw new DomainError(DomainErrorCode.Unauthorized, 'the session ended: log in again');
      const problem = csrfProblem(
        {
          method: request.method,
          ownOrigin: `${request.protocol}://${request.headers.host ?? ''}`,
          origin: request.headers.origin,
          referer: request.headers.referer,
          csrfHeader: request.header('x-csrf-token'),
        },
        session.csrfToken,
      );
      if (problem) throw new DomainError(DomainErrorCode.CsrfCheckFailed, problem);
      this.requireRole(session.actor, targets);
      request.actor = session.actor;
      request.webSession = session;
      return true;
    }
    const [scheme, value] = header.split(' ', 2);
    const source = request.socket.remoteAddress ?? 'unknown';

    if (scheme?.toLowerCase() === 'bearer' && value) {
      const actor = await this.bearer(context, { channel: LoginChannel.RestBearer, source }, value.trim());
      this.requireRole(actor, targets);
      request.actor = actor;
      return true;
    }

    if (
      scheme?.toLowerCase() === 'basic' &&
      value &&
      this.reflector.getAllAndOverride<boolean>(ALLOW_DEVICES_KEY, targets)
    ) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const deviceId = colon > 0 ? decoded.slice(0, colon) : '';
      const secret = colon > 0 ? decoded.slice(colon + 1) : '';
      const identity = isDeviceId(deviceId) ? deviceId : undefined;
      await this.basic(context, { channel: LoginChannel.HttpBasic, source, identity }, secret);
      request.actor = deviceActor(deviceId);
      return true;
    }

    throw new DomainError(DomainErrorCode.Unauthorized, 'missing credential: send Authorization: Bearer <token>');
  }

  private requireRole(actor: Actor, targets: Parameters<Reflector['getAllAndOverride']>[1]): void {
    const required = this.reflector.getAllAndOverride<Role>(MIN_ROLE_KEY, targets) ?? Role.Viewer;
    if (!roleSatisfies(actor.role ?? Role.Viewer, required)) {
      throw new DomainError(DomainErrorCode.Forbidden, `this action needs the ${required} role`);
    }
  }

  private async bearer(context: ExecutionContext, attempt: LoginAttempt, secret: string): Promise<Actor> {
    this.admit(context, attempt);
    const actor = await this.refundOnError(attempt, this.tokens.authenticate(secret));
    if (actor) {
      this.throttle.refund(attempt);
      return actor;
    }
    this.throttle.fail(attempt, LoginFailure.UnknownToken);
    throw new DomainError(DomainErrorCode.Unauthorized, 'unknown or revoked API token');
  }

  private async basic(context: ExecutionContext, attempt: LoginAttempt, secret: string): Promise<void> {
    this.admit(context, attempt);
    const deviceId = attempt.identity;
    const result =
      this.devices && deviceId ? await this.refundOnError(attempt, this.devices.check(deviceId, secret)) : null;
    if (result === 'ok') {
      this.throttle.refund(attempt);
      return;
    }
    this.throttle.fail(attempt, result === null ? LoginFailure.Malformed : credentialFailure(result));
    // unknown, wrong and decommissioned answer alike: the answer tells nothing about which ids exist
    throw new DomainError(DomainErrorCode.Unauthorized, 'unknown device or wrong credential');
  }

  /** A check that throws (database down) says nothing about the credential: its token is given back. */
  private async refundOnError<T>(attempt: LoginAttempt, check: Promise<T>): Promise<T> {
    try {
      return await check;
    } catch (error) {
      this.throttle.refund(attempt);
      throw error;
    }
  }

  /** 429 with Retry-After, before any credential check, while the source or identity has failed too often. */
  private admit(context: ExecutionContext, attempt: LoginAttempt): void {
    const wait = this.throttle.admit(attempt);
    if (wait === 0) return;
    context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(wait));
    throw new DomainError(DomainErrorCode.TooManyRequests, `too many failed logins: retry in ${wait} s`, {
      retryAfterSeconds: wait,
    });
  }
}
