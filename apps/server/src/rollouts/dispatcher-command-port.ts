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

  record(manager: EntityManager, deviceId: string, request: CommandRequest, actor: Actor): Promise<DeviceCommand> {
    return this.dispatcher.record(manager, deviceId, request, actor);
  }

  publish(command: StoredCommand): Promise<DeviceCommand> {
    return this.dispatcher.publish(command as DeviceCommand);
  }

  resendUndelivered(deviceId: string): Promise<number> {
    return this.dispatcher.resendUndelivered(deviceId);
  }
}
