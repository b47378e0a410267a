import { Body, Controller, Delete, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import {
  ApiCookieAuth,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainError, DomainErrorCode as E } from '../common/domain-error';
import { ServerConfig } from '../config/server-config';
import type { AuthenticatedRequest } from './current-actor.decorator';
import { CreateSessionDto, SessionDto } from './dto/session.dto';
import { LoginChannel, LoginFailure, LoginThrottle } from './login-throttle';
import { Public } from './public.decorator';
import { readCookie, SESSION_COOKIE, sessionCookie } from './session-cookie';
import { TokensService } from './tokens.service';
import { WebSession, WebSessionsService } from './web-sessions.service';

function sessionDto(session: WebSession): SessionDto {
  return {
    tokenId: session.actor.id,
    name: session.actor.name,
    role: session.actor.role!,
    csrfToken: session.csrfToken,
    expiresAt: session.expiresAt.toISOString(),
  };
}

/** The dashboard's login: an API token in the body (never in a URL) becomes an HttpOnly session cookie. */
@ApiTags('session')
@Controller('api/v1/session')
export class SessionController {
  constructor(
    private readonly tokens: TokensService,
    private readonly sessions: WebSessionsService,
    private readonly throttle: LoginThrottle,
    private readonly config: ServerConfig,
  ) {}

  @Post()
  @Public()
  @ApiOperation({ summary: 'Log in with an API token: sets the session cookie, answers the CSRF token' })
  @ApiCreatedResponse({ type: SessionDto })
  @ApiErrors(E.Invalid, E.Unauthorized, E.TooManyRequests)
  async create(
    @Body() body: CreateSessionDto,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionDto> {
    const attempt = { channel: LoginChannel.RestBearer, source: request.socket.remoteAddress ?? 'unknown' };
    const wait = this.throttle.admit(attempt);
    if (wait > 0) {
      response.setHeader('Retry-After', String(wait));
      throw new DomainError(E.TooManyRequests, `too many failed logins: retry in ${wait} s`, {
        retryAfterSeconds: wait,
      });
    }
    let actor;
    try {
      actor = await this.tokens.authenticate(body.token.trim());
    } catch (error) {
      this.throttle.refund(attempt);
      throw error;
    }
    if (!actor) {
      this.throttle.fail(attempt, LoginFailure.UnknownToken);
      throw new DomainError(E.Unauthorized, 'unknown or revoked API token');
    }
    this.throttle.refund(attempt);
    const { sessionId, session } = await this.sessions.create(actor);
    const maxAge = (session.expiresAt.getTime() - Date.now()) / 1000;
    response.setHeader('Set-Cookie', sessionCookie(sessionId, maxAge, this.secure(request)));
    return sessionDto(session);
  }

  @Get()
  @ApiCookieAuth()
  @ApiOperation({ summary: 'The current session (who is logged in, the CSRF token)' })
  @ApiOkResponse({ type: SessionDto })
  @ApiErrors(E.Unauthorized)
  current(@Req() request: AuthenticatedRequest & { webSession?: WebSession }): SessionDto {
    if (!request.webSession) throw new DomainError(E.Unauthorized, 'no dashboard session: log in first');
    return sessionDto(request.webSession);
  }

  @Delete()
  @HttpCode(204)
  @ApiCookieAuth()
  @ApiOperation({ summary: 'Log out: ends the session and clears its cookie' })
  @ApiNoContentResponse()
  @ApiErrors(E.Unauthorized, E.CsrfCheckFailed)
  async delete(@Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<void> {
    const sessionId = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (sessionId) await this.sessions.delete(sessionId);
    response.setHeader('Set-Cookie', sessionCookie('', 0, this.secure(request)));
  }

  private secure(request: Request): boolean {
    return this.config.httpTlsEnabled || request.secure;
  }
}
