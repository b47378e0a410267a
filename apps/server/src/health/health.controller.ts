import { Controller, Get, Inject, Optional } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { Public } from '../auth/public.decorator';
import { BROKER_READINESS, BrokerReadiness } from './broker-readiness';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { LivenessDto, ReadinessDto } from './dto/health.dto';

@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    @Optional() @Inject(BROKER_READINESS) private readonly broker?: BrokerReadiness,
  ) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  @ApiOkResponse({ type: LivenessDto })
  live(): LivenessDto {
    return { status: 'ok' };
  }

  /** Readiness: the database answers and the MQTT broker listens. 503 otherwise. */
  @Get('readyz')
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOkResponse({ type: ReadinessDto })
  @ApiErrors(E.NotReady)
  ready(): Promise<ReadinessDto> {
    return this.health.check([
      () => this.database.pingCheck('database', { timeout: 3000 }),
      () => {
        const indicator = this.indicators.check('mqtt');
        return this.broker?.isListening() ? indicator.up() : indicator.down({ reason: 'broker not listening' });
      },
    ]);
  }
}
