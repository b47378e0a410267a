import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DeviceChannel, RejectionReason, deviceTopic, encodeMessage, isDeviceId } from '@cowroot/protocol';
import type { Aedes, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { readFile } from 'node:fs/promises';
import { AddressInfo, Server, Socket, createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { credentialFailure, LoginChannel, LoginFailure, LoginThrottle } from '../auth/login-throttle';
import { ServerConfig } from '../config/server-config';
import { DeviceBroker } from '../broker/device-broker';
import { DeviceCredentialAuthenticator } from '../devices/device-credential.authenticator';
import { DevicePresenceService } from '../devices/device-presence.service';
import { BrokerRegistry } from '../broker/broker-registry.service';
import { DeviceMessageHandler, Rejection } from './device-message-handler';
import { DeviceSessions } from './device-sessions';
import { EventsHandler } from './events.handler';
import { decidePublish, maySubscribe } from './mqtt-acl';
import { MqttMetrics } from './mqtt-metrics';
import { guardPacketSize } from './mqtt-packet-size-guard';
import { NoticeBudget } from './notice-budget';
import { rejectionNotice } from './rejection-notice';
import { PresenceHandler } from './presence.handler';
import { StateHandler } from './state.handler';

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3); aedes declares them as a const enum, unusable here. */
const CONNACK_UNACCEPTABLE_PROTOCOL_VERSION = 1;
const CONNACK = { identifierRejected: 2, serverUnavailable: 3, badUsernameOrPassword: 4 } as const;

/**
 * Packets whose declared size exceeds this many times the message limit are cut off at the socket. Smaller
 * oversized messages are received, acknowledged and rejected by the handlers, so a device is not stuck
 * resending a message the server will never take.
 */
const HARD_PACKET_LIMIT_FACTOR = 4;

/**
 * The embedded aedes broker. Devices authenticate with their credential (username = client id = device
 * id); the ACL confines each to its own topics; inbound messages are ingested BEFORE aedes sends PUBACK, so
 * an acknowledged QoS 1 message is committed to PostgreSQL. The server publishes commands through the
 * aedes instance, without a network client.
 */
@Injectable()
export class MqttBrokerService implements DeviceBroker, OnApplicationBootstrap, OnModuleDestroy {
  readonly kind = 'embedded' as const;
  /** aedes keeps nothing for a device without a session: the queued-command poll covers connected ones */
  readonly queuesForOfflineDevices = false;
  private readonly logger = new Logger(MqttBrokerService.name);
  private broker: Aedes | null = null;
  private readonly servers: Server[] = [];
  private plainPort = -1;
  private securePort = -1;
  private readonly handlers: ReadonlyMap<DeviceChannel, DeviceMessageHandler>;
  private readonly subscribedListeners: Array<(deviceId: string) => void> = [];
  private readonly notices = new NoticeBudget();

  constructor(
    private readonly config: ServerConfig,
    private readonly registry: BrokerRegistry,
    private readonly authenticator: DeviceCredentialAuthenticator,
    private readonly presence: DevicePresenceService,
    private readonly sessions: DeviceSessions,
    private readonly metrics: MqttMetrics,
    private readonly loginThrottle: LoginThrottle,
    state: StateHandler,
    events: EventsHandler,
    presenceHandler: PresenceHandler,
  ) {
    this.handlers = new Map([state, events, presenceHandler].map((handler) => [handler.channel, handler]));
  }

  /** The plain MQTT port actually listened on (MQTT_PORT=0 picks a free one); -1 before start. */
  get port(): number {
    return this.plainPort;
  }

  /** The mqtts port, or -1 when TLS is not configured. */
  get tlsPort(): number {
    return this.securePort;
  }

  isListening(): boolean {
    return (
      this.broker !== null && !this.broker.closed && this.servers.length > 0 && this.servers.every((s) => s.listening)
    );
  }

  isConnected(deviceId: string): boolean {
    return this.sessions.isConnected(deviceId);
  }

  /** Called with the device id whenever a device (re)subscribes to its commands topic. */
  onResendNeeded(listener: (deviceId: string) => void): void {
    this.subscribedListeners.push(listener);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /** Publishes a command (QoS 1) to the device's commands topic; true when the device has a live session. */
  async publishCommand(deviceId: string, payload: Buffer): Promise<boolean> {
    const broker = this.broker;
    if (!broker || broker.closed) return false;
    const packet: PublishPacket = {
      cmd: 'publish',
      topic: deviceTopic(deviceId, DeviceChannel.Commands),
      payload,
      qos: 1,
      retain: false,
      dup: false,
    };
    await new Promise<void>((resolve, reject) =>
      broker.publish(packet, (error) => (error ? reject(error) : resolve())),
    );
    return this.sessions.isConnected(deviceId);
  }

  /** Closes the device's session (decommissioning); true when it had one. */
  async disconnectDevice(deviceId: string): Promise<boolean> {
    const session = this.sessions.get(deviceId);
    session?.close();
    return session !== undefined;
  }

  private async start(): Promise<void> {
    await this.registry.join();
    const reaped = await this.presence.reapOrphans();
    if (reaped > 0) this.logger.log(`marked ${reaped} device(s) offline whose server instance is gone`);
    // aedes 1.x is ESM-only
    const { Aedes } = await import('aedes');
    const broker = await Aedes.createBroker({
      id: this.registry.id,
      authenticate: (client, username, password, done) =>
        this.authenticate(client, username, password, (error, success) => {
          if (success) this.noticeTakeover(client);
          done(error, success);
        }),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, subscription, done) => this.authorizeSubscribe(client, subscription, done),
    });
    broker.on('clientReady', (client) => this.onClientReady(client));
    broker.on('clientDisconnect', (client) => this.onClientDisconnect(client));
    broker.on('subscribe', (subscriptions, client) => this.onSubscribe(subscriptions, client));
    broker.on('clientError', (client, error) =>
      this.logger.debug(`deviceId=${client.id} connection error: ${error.message}`),
    );
    broker.on('connectionError', (_client, error) => {
      // aedes 1.x speaks MQTT 3.1 and 3.1.1 only: an MQTT 5 CONNECT gets return code 1 (docs/protocol.md §2)
      if ((error as Error & { errorCode?: number }).errorCode === CONNACK_UNACCEPTABLE_PROTOCOL_VERSION) {
        this.logger.warn(`MQTT connect refused: unsupported protocol level (use MQTT 3.1.1): ${error.message}`);
      } else {
        this.logger.debug(`connection error before CONNECT: ${error.message}`);
      }
    });
    this.broker = broker;
    try {
      this.plainPort = await this.listen(
        createServer((socket) => this.accept(socket)),
        this.config.mqttPort,
        'MQTT_PORT',
      );
      if (this.config.mqttTlsKeyFile && this.config.mqttTlsCertFile) {
        const [key, cert] = await Promise.all([
          readFile(this.config.mqttTlsKeyFile),
          readFile(this.config.mqttTlsCertFile),
        ]);
        const secure = createTlsServer({ key, cert }, (socket) => this.accept(socket));
        this.securePort = await this.listen(secure, this.config.mqttsPort, 'MQTTS_PORT');
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.registry.keepBeating(() => this.presence.reapOrphans());
    const tls = this.securePort >= 0 ? `, mqtts on ${this.config.mqttHost}:${this.securePort}` : '';
    this.logger.log(`MQTT broker listening on ${this.config.mqttHost}:${this.plainPort}${tls}`);
  }

  private async stop(): Promise<void> {
    const broker = this.broker;
    if (!broker) return;
    this.sessions.closing = true;
    const connected = this.sessions.deviceIds();
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await Promise.all(closed);
    this.servers.length = 0;
    this.broker = null;
    this.plainPort = -1;
    this.securePort = -1;
    // messages handed to the handlers before the close are still written
    await Promise.all([...this.handlers.values()].map((handler) => handler.drain()));
    await this.presence.markSessionsOffline(connected, 'server shutting down');
    await this.registry.leave();
    this.logger.log('MQTT broker stopped');
  }

  private listen(server: Server, port: number, variable: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(
                `${variable}=${port}: port already in use on ${this.config.mqttHost}; stop the other process or choose another port`,
              )
            : error,
        );
      });
      server.listen(port, this.config.mqttHost, () => {
        this.servers.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private accept(socket: Socket): void {
    const limit = this.config.maxMqttMessageBytes * HARD_PACKET_LIMIT_FACTOR;
    const client = this.broker?.handle(socket);
    guardPacketSize(socket, limit, () =>
      this.metrics.reject(
        client?.id ?? '-',
        'connection',
        RejectionReason.PacketTooLarge,
        `packet over ${limit} bytes from ${socket.remoteAddress}: connection closed`,
      ),
    );
  }

  /**
   * MQTT-3.1.4: refuse unknown devices, wrong credentials, decommissioned devices, and foreign client ids.
   * Unknown and decommissioned devices get the same CONNACK code; failures are counted and throttled by
   * LoginThrottle (a throttled CONNECT is refused as "server unavailable" before any credential check).
   */
  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    const deviceId = username ?? '';
    const attempt = {
      channel: LoginChannel.Mqtt,
      source: (client.conn as Partial<Socket>).remoteAddress ?? 'unknown',
      identity: isDeviceId(deviceId) ? deviceId : undefined,
    };
    const refuse = (returnCode: number, why: string, failure?: Exclude<LoginFailure, LoginFailure.Throttled>) => {
      if (failure) this.loginThrottle.fail(attempt, failure);
      this.logger.warn(`deviceId=${deviceId || '-'} MQTT connect refused: ${why}`);
      done(Object.assign(new Error(why), { returnCode }) as AuthenticateError, false);
    };
    const wait = this.loginThrottle.admit(attempt);
    if (wait > 0) return refuse(CONNACK.serverUnavailable, `too many failed logins, retry in ${wait} s`);
    if (!password || !isDeviceId(deviceId))
      return refuse(CONNACK.badUsernameOrPassword, 'missing or malformed credentials', LoginFailure.Malformed);
    // the client id picks the session aedes replaces on a new connect: a device may only take over its own
    if (client.id !== deviceId)
      return refuse(CONNACK.identifierRejected, `client id ${client.id} is not the device id`, LoginFailure.Malformed);
    this.authenticator.check(deviceId, password.toString('utf8')).then(
      (result) => {
        if (result === 'ok') {
          this.loginThrottle.refund(attempt);
          return done(null, true);
        }
        refuse(CONNACK.badUsernameOrPassword, `credential refused (${result})`, credentialFailure(result));
      },
      (error: Error) => {
        this.loginThrottle.refund(attempt);
        refuse(CONNACK.serverUnavailable, `credential check failed: ${error.message}`);
      },
    );
  }

  /**
   * MQTT-3.3.5-2: an unauthorised PUBLISH closes the connection (3.1.1 has no way to refuse one). An
   * authorised message is ingested here, before aedes acknowledges it.
   */
  private authorizePublish(client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
    if (!client) return done(null);
    const deviceId = client.id;
    const decision = decidePublish(deviceId, packet.topic);
    if (!decision.allowed) {
      this.metrics.reject(deviceId, 'publish', RejectionReason.AclDenied, decision.reason);
      return done(new Error(decision.reason));
    }
    const channel = decision.topic.channel;
    const handler = this.handlers.get(channel);
    if (!handler) return done(new Error(`no handler for ${channel}`));
    this.metrics.received(channel);
    // nothing subscribes to device channels: state lives in PostgreSQL, not in retained messages
    packet.retain = false;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    handler.handle(deviceId, payload, client).then(
      (rejection) => {
        if (rejection) this.rejected(deviceId, channel, rejection);
        done(null);
      },
      (error: Error) => {
        this.logger.error(
          `deviceId=${deviceId} channel=${channel} not stored, closing so the device resends: ${error.message}`,
        );
        done(error);
      },
    );
  }

  /**
   * docs/protocol.md §7.1: a message acknowledged but not applied is counted by reason, and the device is
   * told on its rejections topic (a few notices per second at most), so it never resends it forever.
   */
  private rejected(deviceId: string, channel: DeviceChannel, rejection: Rejection): void {
    this.metrics.reject(deviceId, channel, rejection.reason, rejection.detail);
    const broker = this.broker;
    const suppressed = this.notices.take(deviceId, Date.now());
    if (!broker || broker.closed || suppressed === null) return;
    const notice = rejectionNotice(channel, rejection, suppressed);
    const packet: PublishPacket = {
      cmd: 'publish',
      topic: deviceTopic(deviceId, DeviceChannel.Rejections),
      payload: encodeMessage(notice),
      qos: 1,
      retain: false,
      dup: false,
    };
    broker.publish(packet, (error) => {
      if (error) this.logger.debug(`deviceId=${deviceId} rejection notice not published: ${error.message}`);
    });
  }

  /** A device may subscribe to its own commands and rejections topics only; anything else is granted 0x80. */
  private authorizeSubscribe(
    client: Client,
    subscription: Subscription,
    done: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    if (!maySubscribe(client.id, subscription.topic)) {
      this.logger.warn(`deviceId=${client.id} subscription to ${subscription.topic} refused`);
      return done(null, null);
    }
    done(null, subscription);
  }

  /**
   * An authenticated connect for a device with a live session: aedes closes the older connection next
   * (MQTT-3.1.4-2). Two agents on one id do this every second, so it is counted, warned about, and audited
   * once per window (docs/protocol.md §4).
   */
  private noticeTakeover(client: Client): void {
    const previous = this.sessions.get(client.id);
    if (!previous || previous === client) return;
    this.metrics.takeover(client.id);
    this.presence
      .recordTakeover(client.id)
      .catch((error: Error) => this.logger.error(`deviceId=${client.id} auditing takeover failed: ${error.message}`));
  }

  private onClientReady(client: Client): void {
    this.sessions.open(client.id, client);
    this.metrics.connected.set(this.sessions.size);
    this.presence
      .markOnline(client.id, 'connected', new Date(), true)
      .catch((error: Error) => this.logger.error(`deviceId=${client.id} marking online failed: ${error.message}`));
  }

  private onClientDisconnect(client: Client): void {
    if (!this.sessions.close(client.id, client)) return;
    this.notices.forget(client.id);
    this.metrics.connected.set(this.sessions.size);
    if (this.sessions.closing) return;
    this.presence
      .markOffline(client.id, 'disconnected')
      .catch((error: Error) => this.logger.error(`deviceId=${client.id} marking offline failed: ${error.message}`));
  }

  private onSubscribe(subscriptions: Subscription[], client: Client | null): void {
    if (!client) return;
    const commands = deviceTopic(client.id, DeviceChannel.Commands);
    // granted 128 = refused (MQTT-3.9.3)
    if (!subscriptions.some((s) => s.topic === commands && (s.qos as number) !== 128)) return;
    for (const listener of this.subscribedListeners) listener(client.id);
  }
}
