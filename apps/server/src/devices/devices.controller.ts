import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Actor } from '../auth/actor';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { DomainErrorCode as E } from '../common/domain-error';
import { StreamedBody } from '../common/body-limit.decorator';
import { parseBulkCsv, parseBulkJson } from './bulk-device-list';
import { DeviceLifecycleService } from './device-lifecycle.service';
import { DeviceProvisioningService } from './device-provisioning.service';
import { DeviceQueryService } from './device-query.service';
import { readBulkBody } from './read-bulk-body';
import { BulkProvisionDto, BulkProvisionResultDto } from './dto/bulk-provision.dto';
import { CreateDeviceDto } from './dto/create-device.dto';
import { DecommissionDeviceDto } from './dto/decommission-device.dto';
import { DeviceDto, DevicePageDto, ProvisionedDeviceDto } from './dto/device.dto';
import { ListDevicesQueryDto } from './dto/list-devices-query.dto';
import { UpdateDeviceDto } from './dto/update-device.dto';

@ApiTags('devices')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/devices')
export class DevicesController {
  constructor(
    private readonly provisioning: DeviceProvisioningService,
    private readonly query: DeviceQueryService,
    private readonly lifecycle: DeviceLifecycleService,
  ) {}

  /** Provisions one device. The credential is in this response only; the server keeps its hash. */
  @Post()
  @Roles(Role.Operator)
  @ApiCreatedResponse({ type: ProvisionedDeviceDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.DeviceExists)
  async create(@Body() body: CreateDeviceDto, @CurrentActor() actor: Actor): Promise<ProvisionedDeviceDto> {
    const { device, credential } = await this.provisioning.provision(body.id, body.tags ?? [], actor);
    return { device: DeviceDto.from(device), credential };
  }

  /**
   * Pre-authorised bulk provisioning: a JSON list or a CSV file (`Content-Type: text/csv`, header
   * `id,tags,credential`, tags separated by `;`). All or nothing; every bad row is listed on 422. Either form
   * may be up to BULK_BODY_MAX_BYTES (413 past it), read after authentication.
   */
  @Post('bulk')
  @Roles(Role.Operator)
  @StreamedBody()
  @ApiConsumes('application/json', 'text/csv')
  @ApiBody({ type: BulkProvisionDto })
  @ApiCreatedResponse({ type: BulkProvisionResultDto })
  @ApiErrors(
    E.Invalid,
    E.UnsupportedContentType,
    E.Forbidden,
    E.DeviceExists,
    E.DeviceListTooLarge,
    E.DeviceListInvalid,
    E.PayloadTooLarge,
  )
  async bulk(
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
    @CurrentActor() actor: Actor,
  ): Promise<BulkProvisionResultDto> {
    const body = await readBulkBody(request, response);
    const list = body.kind === 'csv' ? parseBulkCsv(body.text) : parseBulkJson(body.value);
    return this.provisioning.provisionBulk(list, actor);
  }

  @Get()
  @ApiOkResponse({ type: DevicePageDto })
  @ApiErrors(E.Invalid, E.InvalidCursor)
  async list(@Query() query: ListDevicesQueryDto): Promise<DevicePageDto> {
    const { limit, cursor, tag, ...filter } = query;
    const page = await this.query.list({ ...filter, tags: tag }, limit ?? 50, cursor);
    return { items: page.items.map((device) => DeviceDto.from(device)), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOkResponse({ type: DeviceDto })
  @ApiErrors(E.DeviceNotFound)
  async get(@Param('id') id: string): Promise<DeviceDto> {
    return DeviceDto.from(await this.query.get(id));
  }

  /** Replaces the device's tags. */
  @Patch(':id')
  @Roles(Role.Operator)
  @ApiOkResponse({ type: DeviceDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.DeviceNotFound)
  async update(
    @Param('id') id: string,
    @Body() body: UpdateDeviceDto,
    @CurrentActor() actor: Actor,
  ): Promise<DeviceDto> {
    return DeviceDto.from(await this.lifecycle.setTags(id, body.tags, actor));
  }

  /** Revokes the credential, closes the MQTT session and refuses later connects; the record stays. */
  @Post(':id/decommission')
  @Roles(Role.Operator)
  @HttpCode(200)
  @ApiOkResponse({ type: DeviceDto })
  @ApiErrors(E.Invalid, E.Forbidden, E.DeviceNotFound, E.DeviceDecommissioned)
  async decommission(
    @Param('id') id: string,
    @Body() body: DecommissionDeviceDto,
    @CurrentActor() actor: Actor,
  ): Promise<DeviceDto> {
    return DeviceDto.from(await this.lifecycle.decommission(id, body.reason, actor));
  }
}
