import { Controller, HttpCode, Optional, Param, Post } from '@nestjs/common';
import { ApiBasicAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Actor } from '../../auth/actor';
import { AllowDevices } from '../../auth/allow-devices.decorator';
import { CurrentActor } from '../../auth/current-actor.decorator';
import { ApiErrors } from '../../common/api-errors.decorator';
import { DomainError, DomainErrorCode as E } from '../../common/domain-error';
import { BrokerTokenService } from './broker-token.service';

export class BrokerTokenDto {
  @ApiProperty({ description: 'bearer user JWT: the MQTT password (username = device id) on any NATS node' })
  token!: string;

  @ApiProperty({ description: 'when NATS closes the connection and refuses the token; fetch a new one first' })
  expiresAt!: string;
}

@ApiTags('devices')
@ApiErrors(E.Unauthorized)
@Controller('api/v1/devices/:id')
export class BrokerTokenController {
  constructor(@Optional() private readonly tokens?: BrokerTokenService) {}

  /** BROKER=nats (docs/scale-out.md): the device's short-lived MQTT password, against its credential. */
  @Post('broker-token')
  @HttpCode(200)
  @AllowDevices()
  @ApiBasicAuth('device')
  @ApiOperation({ summary: "A device's MQTT broker JWT (BROKER=nats only; 422 with the embedded broker)" })
  @ApiOkResponse({ type: BrokerTokenDto })
  @ApiErrors(E.Forbidden, E.InvalidState)
  async issue(@Param('id') id: string, @CurrentActor() actor: Actor): Promise<BrokerTokenDto> {
    if (actor.type !== 'device' || actor.id !== id)
      throw new DomainError(E.Forbidden, 'a broker token is issued to the device itself, with its credential');
    if (!this.tokens)
      throw new DomainError(
        E.InvalidState,
        'this server runs the embedded MQTT broker (BROKER=embedded): devices connect with their credential',
      );
    const issued = await this.tokens.issue(id);
    return { token: issued.token, expiresAt: issued.expiresAt.toISOString() };
  }
}
