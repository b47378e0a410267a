import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { UUID_PATTERN, isDeviceId } from '@cowroot/protocol';
import { DataSource } from 'typeorm';
import { Page } from '../common/cursor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { DeviceCommand } from './device-command.entity';
import { commandCursor, deviceCursor, eventCursor } from './device-cursors';
import { DeviceJobEvent } from './device-job-event.entity';
import { Device, DeviceStatus } from './device.entity';

export interface DeviceFilter {
  tags?: string[];
  online?: boolean;
  release?: string;
  q?: string;
  status?: DeviceStatus;
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Reads devices, their commands and their job events; keyset pagination everywhere. */
@Injectable()
export class DeviceQueryService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async get(id: string): Promise<Device> {
    const device = isDeviceId(id) ? await this.dataSource.getRepository(Device).findOneBy({ id }) : null;
    if (!device) throw new DomainError(DomainErrorCode.NotFound, `device ${id} not found`);
    return device;
  }

  /** Ordered by id so that pages are stable while devices are added or change state. */
  async list(filter: DeviceFilter, limit: number, cursor?: string): Promise<Page<Device>> {
    const qb = this.dataSource.getRepository(Device).createQueryBuilder('d');
    if (filter.tags?.length) qb.andWhere('d.tags @> :tags::text[]', { tags: filter.tags });
    if (filter.online !== undefined) qb.andWhere('d.online = :online', { online: filter.online });
    if (filter.release) qb.andWhere('d.booted_release = :release', { release: filter.release });
    if (filter.q) qb.andWhere(`d.id ILIKE :q ESCAPE '\\'`, { q: `%${escapeLike(filter.q)}%` });
    if (filter.status) qb.andWhere('d.status = :status', { status: filter.status });
    if (cursor) qb.andWhere('d.id > :after', { after: deviceCursor.decode(cursor).id });
    const rows = await qb
      .orderBy('d.id', 'ASC')
      .limit(limit + 1)
      .getMany();
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? deviceCursor.encode({ id: items[items.length - 1].id }) : null };
  }

  /** Newest first. */
  async commands(deviceId: string, limit: number, cursor?: string): Promise<Page<DeviceCommand>> {
    await this.get(deviceId);
    const qb = this.dataSource
      .getRepository(DeviceCommand)
      .createQueryBuilder('c')
      .where('c.device_id = :deviceId', { deviceId });
    if (cursor) {
      const position = commandCursor.decode(cursor);
      qb.andWhere('(c.created_at, c.id) < (:createdAt::timestamptz, :id::uuid)', position);
    }
    const rows = await qb
      .orderBy('c.created_at', 'DESC')
      .addOrderBy('c.id', 'DESC')
      .limit(limit + 1)
      .getMany();
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor:
        rows.length > limit ? commandCursor.encode({ createdAt: last.createdAt.toISOString(), id: last.id }) : null,
    };
  }

  async command(deviceId: string, commandId: string): Promise<DeviceCommand> {
    const command = UUID_PATTERN.test(commandId)
      ? await this.dataSource.getRepository(DeviceCommand).findOneBy({ id: commandId, deviceId })
      : null;
    if (!command)
      throw new DomainError(DomainErrorCode.NotFound, `command ${commandId} of device ${deviceId} not found`);
    return command;
  }

  /** Newest first, in arrival order. */
  async events(deviceId: string, limit: number, cursor?: string): Promise<Page<DeviceJobEvent>> {
    await this.get(deviceId);
    const qb = this.dataSource
      .getRepository(DeviceJobEvent)
      .createQueryBuilder('e')
      .where('e.device_id = :deviceId', { deviceId });
    if (cursor) qb.andWhere('e.seq < :seq', { seq: eventCursor.decode(cursor).seq });
    const rows = await qb
      .orderBy('e.seq', 'DESC')
      .limit(limit + 1)
      .getMany();
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? eventCursor.encode({ seq: items[items.length - 1].seq }) : null };
  }
}
