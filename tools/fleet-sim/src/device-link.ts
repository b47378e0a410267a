import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { MqttClient } from 'mqtt';
import { DeviceChannel, PROTOCOL_VERSION, PresenceStatus, deviceTopic, encodeMessage } from '@cowroot/protocol';
import { ReconnectBackoff, ReconnectBackoffOptions } from './reconnect-backoff';

/** SUBACK of the commands topic and PUBACK of the online presence after CONNACK, or the attempt failed */
const SETUP_TIMEOUT_MS = 30_000;

export interface DeviceLinkOptions {
  id: string;
  credential: string;
  /** mqtt://127.0.0.1:<port> */
  mqttUrl: string;
  /** further brokers: each open() tries the next URL of mqttUrl + these */
  failoverMqttUrls?: string[];
  /** the MQTT password for each open(); default the credential */
  mqttPassword?: () => Promise<string>;
  /** keep every message until it is acknowledged, and report a lost connection (onLost) */
  reconnect?: boolean;
  /** reconnect mode: a PUBLISH without PUBACK for this long is sent again (default 5 s) */
  pubackTimeoutMs?: number;
  /** delays between attempts of openRetrying; default 0.5 s doubling up to 8 s, jittered */
  reconnectBackoff?: ReconnectBackoffOptions;
}

export interface DeviceLinkHandlers {
  /** a message on the device's commands topic */
  onCommand: (payload: Buffer) => void;
  /** reconnect mode: the connection went away without drop() or stop() */
  onLost: () => void;
}

/**
 * The simulated device's MQTT link, as the agent's: a persistent session (clean: false) with a retained
 * offline will, the device's commands topic subscribed, and an online presence once connected. Without
 * `reconnect` a publish on a dead link is dropped (the load benchmark's devices); with it a publish is
 * repeated until a PUBACK comes back, across connections.
 */
export class DeviceLink {
  private client: MqttClient | null = null;
  private connects = 0;
  private stopped = false;
  /** reconnect mode: publishes sent again because the first attempt got no PUBACK */
  resends = 0;
  /** opens after a failed attempt or a lost connection */
  reconnects = 0;
  private readonly backoff: ReconnectBackoff;
  private lost = false;
  private opening: Promise<void> | null = null;

  constructor(
    private readonly options: DeviceLinkOptions,
    private readonly handlers: DeviceLinkHandlers,
  ) {
    this.backoff = new ReconnectBackoff(options.reconnectBackoff);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Connects to the next broker URL, subscribes to the commands and reports presence online. */
  async open(): Promise<void> {
    const { id } = this.options;
    const urls = [this.options.mqttUrl, ...(this.options.failoverMqttUrls ?? [])];
    const url = urls[this.connects++ % urls.length];
    const password = this.options.mqttPassword ? await this.options.mqttPassword() : this.options.credential;
    const client = mqtt.connect(url, {
      clientId: id,
      username: id,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      clean: false,
      will: {
        topic: deviceTopic(id, DeviceChannel.Presence),
        payload: encodeMessage({ v: PROTOCOL_VERSION, status: PresenceStatus.Offline }),
        qos: 1,
        retain: true,
      },
    });
    this.client = client;
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error(`${id}: connection closed before CONNACK`)));
    });
    client.removeAllListeners('error');
    client.on('error', () => undefined);
    if (this.options.reconnect)
      client.once('close', () => {
        if (this.client !== client || this.stopped) return;
        // the open after a loss counts as a reconnect even when its first attempt succeeds
        this.lost = true;
        this.handlers.onLost();
      });
    client.on('message', (_topic, payload) => this.handlers.onCommand(payload));
    // SUBSCRIBE and the online presence on this connection only, failing when it closes: NATS closes
    // connections between CONNACK and SUBACK under load (seen with 10,000 devices), and a setup that waited
    // for the next connection would wait for ever, since it is the setup's failure that makes the next one
    let timer: NodeJS.Timeout | undefined;
    const closed = new Promise<never>((_, reject) => {
      client.once('close', () => reject(new Error(`${id}: connection closed before the setup completed`)));
      timer = setTimeout(
        () => reject(new Error(`${id}: no SUBACK/PUBACK within ${SETUP_TIMEOUT_MS} ms`)),
        SETUP_TIMEOUT_MS,
      );
    });
    closed.catch(() => undefined);
    const presence = { v: PROTOCOL_VERSION, status: PresenceStatus.Online, at: new Date().toISOString() };
    try {
      await Promise.race([
        (async () => {
          const [grant] = await client.subscribeAsync(deviceTopic(id, DeviceChannel.Commands), { qos: 1 });
          // 0x80: NATS could not create the session's JetStream consumer; commands would never arrive
          if (grant?.qos === 128) throw new Error(`${id}: SUBSCRIBE refused (SUBACK 0x80)`);
          // reconnect mode: the presence is repeated until acknowledged, across connections, like any report,
          // and not waited for: a retained PUBLISH can wait long for its PUBACK while NATS re-elects the
          // retained-messages stream, and the connection is usable meanwhile
          if (this.options.reconnect) void this.publish(DeviceChannel.Presence, presence, true);
          else
            await client.publishAsync(deviceTopic(id, DeviceChannel.Presence), encodeMessage(presence), {
              qos: 1,
              retain: true,
            });
        })(),
        closed,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * open() on the next URL until it succeeds, waiting ReconnectBackoff's jittered, growing delay between
   * attempts (a cluster still placing its MQTT streams, or a node that closed thousands of devices at once).
   * One attempt loop at a time: a loss while it runs (onLost) joins it instead of opening a second client
   * with the same client id, which NATS would answer by closing the first.
   */
  openRetrying(): Promise<void> {
    this.opening ??= this.retryOpen().finally(() => (this.opening = null));
    return this.opening;
  }

  private async retryOpen(): Promise<void> {
    let retried = false;
    while (!this.stopped) {
      try {
        await this.open();
        this.backoff.succeeded();
        if (retried || this.lost) this.reconnects++;
        this.lost = false;
        return;
      } catch {
        retried = true;
        await this.drop();
        await sleep(this.backoff.failed());
      }
    }
  }

  /** Ends the connection now (a reboot, a failed connect); open() makes the next one. */
  async drop(): Promise<void> {
    await this.client?.endAsync(true).catch(() => undefined);
    this.client = null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.drop();
  }

  async publish(channel: DeviceChannel, message: object, retain = false): Promise<void> {
    const topic = deviceTopic(this.options.id, channel);
    if (!this.options.reconnect) {
      if (!this.client?.connected) return;
      await this.client.publishAsync(topic, encodeMessage(message), { qos: 1, retain });
      return;
    }
    // until acknowledged: a PUBLISH in flight on a connection that dies is sent again on the next one
    const pubackTimeoutMs = this.options.pubackTimeoutMs ?? 5000;
    let sends = 0;
    while (!this.stopped) {
      const client = this.client;
      if (client?.connected) {
        let onClose = (): void => undefined;
        let timer: NodeJS.Timeout | undefined;
        const closed = new Promise<never>((_, reject) => {
          onClose = () => reject(new Error('closed'));
          client.once('close', onClose);
          timer = setTimeout(() => reject(new Error('no PUBACK')), pubackTimeoutMs);
        });
        closed.catch(() => undefined);
        if (sends++ > 0) this.resends++;
        const sent = client.publishAsync(topic, encodeMessage(message), { qos: 1, retain });
        const acked = await Promise.race([sent, closed]).then(
          () => true,
          () => false,
        );
        // one listener per publish would pile up on a long-lived connection
        client.off('close', onClose);
        clearTimeout(timer);
        if (acked) return;
      }
      await sleep(200);
    }
  }
}
