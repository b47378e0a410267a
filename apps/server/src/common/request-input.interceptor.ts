import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { from, Observable, switchMap } from 'rxjs';
import { BODY_LIMIT_KEY, BodyPolicy, DEFAULT_JSON_BODY_BYTES } from './body-limit.decorator';
import { DomainError, DomainErrorCode } from './domain-error';
import { jsonProblem, parseJsonBody, readBody } from './read-body';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/**
 * Global interceptor: Nest runs interceptors after the guards, so a request body is read only once the
 * caller is authenticated and authorised (the app has no body-parser middleware, see bootstrap.ts). It
 * reads JSON within the route's limit (@BodyLimit, else DEFAULT_JSON_BODY_BYTES), leaves @StreamedBody
 * routes alone, and refuses NUL characters in the query string and path parameters as in bodies: all
 * before any value reaches a DTO or the database.
 */
@Injectable()
export class RequestInputInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<Request>();
    const response = context.switchToHttp().getResponse<Response>();
    for (const [where, values] of [
      ['query string', request.query],
      ['path', request.params],
    ] as const) {
      const problem = jsonProblem(values);
      if (problem) throw new DomainError(DomainErrorCode.Invalid, `the ${where} is refused: ${problem}`);
    }
    const policy = this.reflector.getAllAndOverride<BodyPolicy | undefined>(BODY_LIMIT_KEY, [
      context.getHandler(),
      context.getClass(),
    ]) ?? { kind: 'json', maxBytes: DEFAULT_JSON_BODY_BYTES };
    if (policy.kind === 'stream') return next.handle();
    return from(this.readJson(request, response, policy.maxBytes)).pipe(switchMap(() => next.handle()));
  }

  private async readJson(request: Request, response: Response, maxBytes: number): Promise<void> {
    const type = (request.headers['content-type'] ?? '').split(';')[0].trim();
    if (!JSON_TYPE.test(type) || request.readableEnded) {
      // what body-parser did: no parsed body is an empty one, so DTO validation names the missing fields
      request.body = request.body ?? {};
      return;
    }
    const bytes = await readBody(request, response, maxBytes, 'the JSON body');
    request.body = bytes.length === 0 ? {} : parseJsonBody(bytes);
  }
}
