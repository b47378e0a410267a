import { Injectable } from '@nestjs/common';
import type { SessionRef } from './device-message-handler';

/**
 * The live MQTT session of each device (one per device: the client id must equal the device id, so a
 * reconnect takes the old session over). Lets presence ignore events of sessions that were replaced.
 */
@Injectable()
export class DeviceSessions {
  private readonly sessions = new Map<string, SessionRef>();
  /** set while the broker shuts down: disconnects then are the server's doing, not the devices' */
  closing = false;

  open(deviceId: string, session: SessionRef): void {
    this.sessions.set(deviceId, session);
  }

  /** @returns true when `session` was the device's live session */
  close(deviceId: string, session: SessionRef): boolean {
    if (this.sessions.get(deviceId) !== session) return false;
    this.sessions.delete(deviceId);
    return true;
  }

  get(deviceId: string): SessionRef | undefined {
    return this.sessions.get(deviceId);
  }

  isConnected(deviceId: string): boolean {
    return this.sessions.has(deviceId);
  }

  /** A message from `session` speaks for the device unless another session has replaced it. */
  isCurrentOrNone(deviceId: string, session: SessionRef): boolean {
    const current = this.sessions.get(deviceId);
    return current === undefined || current === session;
  }

  get size(): number {
    return this.sessions.size;
  }

  deviceIds(): string[] {
    return [...this.sessions.keys()];
  }
}
