import { CanActivate, ExecutionContext, Inject, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { isDeviceId } from '@cowroot/protocol';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { deviceActor } from './actor';
import { ALLOW_DEVICES_KEY } from './allow-devices.decorator';
import type { AuthenticatedRequest } from './current-actor.decorator';
import { DEVICE_AUTHENTICATOR, DeviceAuthenticator } from './device-authenticator';
import { PUBLIC_KEY } from './public.decorator';
import { MIN_ROLE_KEY } from './roles.decorator';
import { Role, roleSatisfies } from './role.enum';
import { TokensService } from './tokens.service';

/**
 * Global guard: every route needs an operator token (Bearer) with at least the route's role, unless it is
 * @Public; routes marked @AllowDevices also take a device's HTTP Basic credential.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokensService,
    @Optional() @Inject(DEVICE_AUTHENTICATOR) private readonly devices?: DeviceAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization ?? '';
    const [scheme, value] = header.split(' ', 2);

    if (scheme?.toLowerCase() === 'bearer' && value) {
      const actor = await this.tokens.authenticate(value.trim());
      if (!actor) throw new DomainError(DomainErrorCode.Unauthorized, 'unknown or revoked API token');
      const required = this.reflector.getAllAndOverride<Role>(MIN_ROLE_KEY, targets) ?? Role.Viewer;
      if (!roleSatisfies(actor.role ?? Role.Viewer, required)) {
        throw new DomainError(DomainErrorCode.Forbidden, `this action needs the ${required} role`);
      }
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
      if (this.devices && isDeviceId(deviceId) && (await this.devices.authenticate(deviceId, secret))) {
        request.actor = deviceActor(deviceId);
        return true;
      }
      throw new DomainError(DomainErrorCode.Unauthorized, 'unknown device or wrong credential');
    }

    throw new DomainError(DomainErrorCode.Unauthorized, 'missing credential: send Authorization: Bearer <token>');
  }
}
