import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiCookieAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { ChangeFeedService } from './change-feed.service';
import { changeBatcher } from './change-batcher';

/** Comment lines keep proxies from closing an idle stream (and tell the server a browser left). */
const KEEPALIVE_MS = 15_000;
/** Changes of one window go out as one event: a 100k-device wave makes a few events a second, not thousands. */
const BATCH_MS = 200;

@ApiTags('events')
@ApiCookieAuth()
@Controller('api/v1/events')
export class EventsController {
  constructor(private readonly feed: ChangeFeedService) {}

  @Get()
  @ApiOperation({
    summary:
      'Server-Sent Events: `change` events {topic, ids} for rollouts, devices, releases and the audit log (EventSource with the session cookie; no token in the URL)',
  })
  @ApiOkResponse({
    description: 'an endless text/event-stream of `event: change` with `data: {"topic":…,"ids":[…] | null}`',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiErrors(E.Unauthorized)
  stream(@Req() request: Request, @Res() response: Response): void {
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    response.write('retry: 2000\n\n');
    const batcher = changeBatcher(BATCH_MS, (changes) => {
      for (const change of changes) response.write(`event: change\ndata: ${JSON.stringify(change)}\n\n`);
    });
    const subscription = this.feed.changes.subscribe({
      next: (change) => batcher.add(change),
      complete: () => response.end(),
    });
    const keepalive = setInterval(() => response.write(': keepalive\n\n'), KEEPALIVE_MS);
    request.on('close', () => {
      clearInterval(keepalive);
      batcher.stop();
      subscription.unsubscribe();
    });
  }
}
