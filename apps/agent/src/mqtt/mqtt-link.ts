import { EventEmitter } from 'node:events';
import { connect, IClientOptions, MqttClient } from 'mqtt';
import { DeviceChannel, PROTOCOL_VERSION, PresenceStatus, deviceTopic, encodeMessage } from '@cowroot/protocol';
import { AgentLogger } from '../logger';
import { AGENT_VERSION } from '../version';
import { reconnectDelayMs } from './reconnect-delay';

export interface MqttLinkOptions {
  deviceId: string;
  credential: string;
  url: string;
  /** further brokers, tried in turn after `url` on each reconnect (a NATS cluster's other nodes) */
  failoverUrls?: string[];
  /**
   * `server.mqttAuth: "token"`: the password for the next connect (a broker JWT fetched against the
   * credential), asked for before the first connect and again after every close; default the credential
   */
  password?: () => Promise<string>;
  ca: Buffer | null;
  /** first reconnect delay; doubles up to maxReconnectMs while the server stays away */
  initialReconnectMs?: number;
  maxReconnectMs?: number;
  /** a connection must last this long before the backoff starts again from initialReconnectMs */
  stableAfterMs?: number;
  connectTimeoutMs?: number;
  /**
   * Subscribe to the server's report receipts (docs/protocol.md §5.4; the NATS cluster mode, where a PUBACK
   * is not the server's word) and emit them as 'receipt' (payload).
   */
  receipts?: boolean;
}

/**
 * The agent's one MQTT connection (docs/protocol.md §4, §5): authenticates with the device credential,
 * leaves an `offline` presence as its last will, announces `online` and resubscribes to its commands on
 * every (re)connect, and reconnects with exponential backoff. The backoff is reset only by a connection
 * that stayed up for `stableAfterMs`, not by every CONNACK: two devices that share a client id kick each
 * other off (MQTT-3.1.4-2), and with a reset on CONNACK they would do so every second forever
 * (docs/agent.md §6). Emits 'connect', 'command' (payload) and, with `receipts`, 'receipt' (payload).
 */
export class MqttLink extends EventEmitter {
  private client: MqttClient | null = null;
  private readonly initialReconnectMs: number;
  private readonly maxReconnectMs: number;
  private readonly stableAfterMs: number;
  private stableTimer: NodeJS.Timeout | null = null;
  private connectedOnce = false;
  /** closes since the last connection that lasted stableAfterMs */
  private closesInARow = 0;

  constructor(
    private readonly options: MqttLinkOptions,
    private readonly logger: AgentLogger,
  ) {
    super();
    this.initialReconnectMs = options.initialReconnectMs ?? 1000;
    this.maxReconnectMs = options.maxReconnectMs ?? 60_000;
    this.stableAfterMs = options.stableAfterMs ?? 30_000;
  }

  /** The delay before the next reconnect attempt, should the connection drop now. */
  get reconnectDelayMs(): number {
    return this.client?.options.reconnectPeriod ?? this.initialReconnectMs;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** True once the broker accepted the credential in this agent run. */
  get hasConnected(): boolean {
    return this.connectedOnce;
  }

  topic(channel: DeviceChannel): string {
    return deviceTopic(this.options.deviceId, channel);
  }

  /**
   * Connects and keeps reconnecting. In token mode the first broker token is fetched first (the promise
   * settles once the client exists); otherwise the client exists when start() returns.
   */
  start(): Promise<void> {
    if (!this.options.password) {
      this.open(this.options.credential);
      return Promise.resolve();
    }
    return this.nextPassword(this.options.credential).then((password) => this.open(password));
  }

  private open(password: string): void {
    const servers = [this.options.url, ...(this.options.failoverUrls ?? [])].map((url) => {
      const parsed = new URL(url);
      return {
        host: parsed.hostname,
        port: Number(parsed.port) || (parsed.protocol === 'mqtts:' ? 8883 : 1883),
        protocol: parsed.protocol.replace(':', '') as 'mqtt' | 'mqtts',
      };
    });
    const clientOptions: IClientOptions = {
      username: this.options.deviceId,
      password,
      // mqtt.js moves to the next server on every reconnect
      ...(servers.length > 1 ? { servers } : {}),
      // the server binds a session to the device: client id = username = device id
      clientId: this.options.deviceId,
      protocolVersion: 4,
      // a persistent session: commands published while the device was offline are still delivered
      clean: false,
      keepalive: 30,
      // mqtt-packet's default pre-builds 65,536 message-id buffers: 10 MiB of RSS a device cannot spare
      writeCache: false,
      reconnectPeriod: this.initialReconnectMs,
      // a refused CONNACK (server restarting, device not yet provisioned) is retried like a lost link
      reconnectOnConnackError: true,
      connectTimeout: this.options.connectTimeoutMs ?? 30_000,
      will: {
        topic: this.topic(DeviceChannel.Presence),
        payload: encodeMessage({ v: PROTOCOL_VERSION, status: PresenceStatus.Offline }),
        qos: 1,
        retain: true,
      },
      ...(this.options.ca ? { ca: this.options.ca } : {}),
    };
    const client = connect(this.options.url, clientOptions);
    this.client = client;
    client.on('connect', () => {
      this.connectedOnce = true;
      this.clearStableTimer();
      this.stableTimer = setTimeout(() => {
        this.stableTimer = null;
        this.closesInARow = 0;
        client.options.reconnectPeriod = this.initialReconnectMs;
      }, this.stableAfterMs);
      this.stableTimer.unref();
      // mqtt.js points options.host/port at the server of this connect (it rotates through `servers`)
      const { protocol, host, port } = client.options;
      this.logger.info('mqtt connected', { url: `${protocol ?? 'mqtt'}://${host}:${port}` });
      client.subscribe(this.topic(DeviceChannel.Commands), { qos: 1 }, (error) => {
        if (error) this.logger.error('subscribing to commands failed', { error: error.message });
      });
      // QoS 0: a lost receipt costs one resend of the event, and NATS keeps no per-session consumer for it
      if (this.options.receipts)
        client.subscribe(this.topic(DeviceChannel.Receipts), { qos: 0 }, (error) => {
          if (error) this.logger.error('subscribing to receipts failed', { error: error.message });
        });
      void this.publish(
        DeviceChannel.Presence,
        {
          v: PROTOCOL_VERSION,
          status: PresenceStatus.Online,
          at: new Date().toISOString(),
          agentVersion: AGENT_VERSION,
        },
        true,
      ).catch(() => undefined);
      this.emit('connect');
    });
    client.on('close', () => {
      this.clearStableTimer();
      // the JWT may have expired or been revoked: the next CONNECT carries a fresh one when it is back in time
      if (this.options.password)
        void this.nextPassword(client.options.password).then((next) => (client.options.password = next));
      // exponential backoff per round over the servers: mqtt.js reads reconnectPeriod for each next attempt
      this.closesInARow += 1;
      client.options.reconnectPeriod = reconnectDelayMs(
        this.closesInARow,
        servers.length,
        this.initialReconnectMs,
        this.maxReconnectMs,
      );
    });
    client.on('error', (error) => this.logger.warn('mqtt error', { error: error.message }));
    client.on('offline', () => this.logger.warn('mqtt offline, reconnecting with backoff'));
    client.on('message', (topic, payload) => {
      if (topic === this.topic(DeviceChannel.Commands)) this.emit('command', payload);
      else if (this.options.receipts && topic === this.topic(DeviceChannel.Receipts)) this.emit('receipt', payload);
    });
  }

  private async nextPassword(fallback: string | Buffer | undefined): Promise<string> {
    const current = typeof fallback === 'string' ? fallback : (fallback?.toString('utf8') ?? this.options.credential);
    if (!this.options.password) return current;
    try {
      return await this.options.password();
    } catch (error) {
      this.logger.warn('fetching the broker token failed, reconnecting with the last one', {
        error: (error as Error).message,
      });
      return current;
    }
  }

  private clearStableTimer(): void {
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.stableTimer = null;
  }

  /** Publishes with QoS 1; resolves at the broker's PUBACK (queued by mqtt.js while offline). */
  publish(channel: DeviceChannel, message: object, retain = false): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('mqtt link not started'));
    return new Promise((resolve, reject) => {
      client.publish(this.topic(channel), encodeMessage(message), { qos: 1, retain }, (error) =>
        error ? reject(error) : resolve(),
      );
    });
  }

  /**
   * Resolves true when the server answered over MQTT (connected, and a QoS 1 publish was acknowledged)
   * within `timeoutMs`, else false. A trial boot whose network is broken must not confirm.
   */
  async waitForServer(timeoutMs: number, probe: () => Promise<object>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const connected = await new Promise<boolean>((resolve) => {
      if (this.connected) return resolve(true);
      const timer = setTimeout(() => {
        this.off('connect', onConnect);
        resolve(false);
      }, timeoutMs);
      const onConnect = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.once('connect', onConnect);
    });
    if (!connected) return false;
    const left = Math.max(1, deadline - Date.now());
    return Promise.race([
      probe()
        .then((message) => this.publish(DeviceChannel.State, message))
        .then(
          () => true,
          () => false,
        ),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), left).unref()),
    ]);
  }

  /**
   * `graceful`: announce offline and disconnect (service stop). Otherwise drop the connection without
   * DISCONNECT, as a reboot or crash does, so the broker publishes the last will.
   */
  async stop(graceful: boolean): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.clearStableTimer();
    this.client = null;
    if (graceful && client.connected) {
      await Promise.race([
        new Promise<void>((resolve) =>
          client.publish(
            this.topic(DeviceChannel.Presence),
            encodeMessage({ v: PROTOCOL_VERSION, status: PresenceStatus.Offline, at: new Date().toISOString() }),
            { qos: 1, retain: true },
            () => resolve(),
          ),
        ),
        new Promise<void>((resolve) => setTimeout(resolve, 2000).unref()),
      ]);
    }
    await new Promise<void>((resolve) => client.end(!graceful, {}, () => resolve()));
    this.removeAllListeners();
  }
}
