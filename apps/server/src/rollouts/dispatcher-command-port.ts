import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { Actor } from '../auth/actor';
import { CommandDispatcher, CommandRequest } from '../devices/command-dispatcher.service';
import { DeviceCommand } from '../devices/device-command.entity';
import { RolloutCommandPort, StoredCommand } from './rollout-command-port';

/** The rollout engine's commands go through the devices feature's CommandDispatcher, like every command. */
@Injectable()
export class DispatcherCommandPort implements RolloutCommandPort {
  constructor(private readonly dispatcher: CommandDispatcher) {}

  recordMany(
    manager: EntityManager,
    items: Array<{ deviceId: string; request: CommandRequest }>,
    actor: Actor,
  ): Promise<DeviceCommand[]> {
    return this.dispatcher.recordMany(manager, items, actor);
  }

  publishMany(commands: StoredCommand[]): Promise<number> {
    return this.dispatcher.publishMany(commands as DeviceCommand[]);
  }

  resendUndelivered(deviceId: string): Promise<number> {
    return this.dispatcher.resendUndelivered(deviceId);
  }
}
