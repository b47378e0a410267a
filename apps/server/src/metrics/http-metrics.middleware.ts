import { Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Histogram } from 'prom-client';
import { runWithCorrelationId } from '../common/request-context';
import { MetricsService } from './metrics.service';

/** Times every HTTP request by route pattern (not raw URL, to keep label cardinality bounded). */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  private readonly latency: Histogram<'method' | 'route' | 'status'>;

  constructor(metrics: MetricsService) {
    this.latency = metrics.histogram(
      'cowroot_http_request_duration_seconds',
      'HTTP request latency by method, route pattern and status',
      ['method', 'route', 'status'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    );
  }

  use(req: Request, res: Response, next: NextFunction): void {
    const stop = this.latency.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      stop({ method: req.method, route: `${req.baseUrl ?? ''}${route}`, status: String(res.statusCode) });
    });
    const requestId = req.headers['x-request-id'];
    runWithCorrelationId(typeof requestId === 'string' ? requestId : undefined, next);
  }
}
