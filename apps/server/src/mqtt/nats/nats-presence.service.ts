import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Subscription } from 'nats';
import { SYSTEM_ACTOR } from '../../auth/actor';
import { AuditService } from '../../audit/audit.service';
import { DevicePresenceService } from '../../devices/device-presence.service';
import { MqttMetrics } from '../mqtt-metrics';
import { BrokerTokenService, DEVICE_JWT_PREFIX } from './broker-token.service';
import { NatsConnections } from './nats-connections';
import { accountConnections, ConnzConnection } from './nats-connz';
import { NatsDeviceBroker } from './nats-device-broker.service';
import { REPORTS_STREAM } from './nats-subjects';

/** The MQTT session's subscriptions are restored or made within this long after CONNACK; then commands are re-sent. */
const RESEND_AFTER_CONNECT_MS = 1000;
/** After a stream leader election the new leader needs a moment before publishes land. */
const RESEND_AFTER_ELECTION_MS = 2000;

/** The part of nats-server 2.9's `$SYS.ACCOUNT.<acc>.CONNECT|DISCONNECT` event (server/events.go) read here. */
interface ClientEvent {
  client?: {
    start?: string;
    stop?: string;
    name_tag?: string;
    client_type?: string;
    client_id?: string;
  };
  reason?: string;
}

export const TAKEOVER_REVOKED_ACTION = 'device.mqtt.takeover-revoked';

/**
 * BROKER=nats presence, from the system account's connect and disconnect events of the application
 * account. The replicas share them through a queue group (each event is handled once), and the devices
 * table keeps the order right by time: a disconnect only takes a device offline when no later connect was
 * recorded. A connect whose MQTT client id is not the device named by its JWT is a client-id takeover
 * (docs/scale-out.md point 2; NATS 2.9 cannot prevent it): the offender's JWTs are revoked, which closes it,
 * the takeover is audited, and the victim's open commands are re-sent when it is back.
 */
@Injectable()
export class NatsPresence implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(NatsPresence.name);
  private readonly subscriptions: Subscription[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly nats: NatsConnections,
    private readonly tokens: BrokerTokenService,
    private readonly broker: NatsDeviceBroker,
    private readonly presence: DevicePresenceService,
    private readonly audit: AuditService,
    private readonly metrics: MqttMetrics,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const account = this.tokens.accountPublicKey;
    const on = (subject: string, handle: (event: ClientEvent) => Promise<void>) =>
      this.subscriptions.push(
        this.nats.sys.subscribe(subject, {
          queue: 'cowroot-presence',
          callback: (error, message) => {
            if (error) return this.logger.warn(`${subject}: ${error.message}`);
            const work = handle(message.json<ClientEvent>()).catch((e: Error) =>
              this.logger.error(`handling ${subject} failed: ${e.message}`),
            );
            this.inFlight.add(work);
            void work.finally(() => this.inFlight.delete(work));
          },
        }),
      );
    on(`$SYS.ACCOUNT.${account}.CONNECT`, (event) => this.connected(event));
    on(`$SYS.ACCOUNT.${account}.DISCONNECT`, (event) => this.disconnected(event));
    // a stream leader moved (node lost): QoS 1 messages in flight then can be lost (issue 12)
    this.subscriptions.push(
      this.nats.app.subscribe('$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.>', {
        queue: 'cowroot-advisories',
        callback: (_error, message) => this.later(RESEND_AFTER_ELECTION_MS, () => this.leaderElected(message.subject)),
      }),
    );
    await Promise.all([this.nats.sys.flush(), this.nats.app.flush()]);
    // after the subscriptions: a connect from now on arrives as an event, one before is in the listing
    await this.reconcile().catch((error: Error) => this.logger.warn(`presence reconcile failed: ${error.message}`));
  }

  /**
   * Connects and disconnects while no replica ran were events nobody heard: the cluster's own list of
   * connections (CONNZ) is the truth at start. Client-id takeovers found in it are handled as on connect.
   */
  async reconcile(): Promise<{ online: number; offline: number }> {
    const listedAt = new Date();
    const { connections, complete } = await accountConnections(this.nats.sys, this.tokens.accountPublicKey);
    const devices: Array<{ deviceId: string; start: Date }> = [];
    for (const connection of connections) {
      const device = this.identify({ client: connectionClient(connection) });
      if (!device) continue;
      if (device.clientId !== device.deviceId) await this.takeover(device.deviceId, device.clientId);
      else devices.push({ deviceId: device.deviceId, start: device.start });
    }
    // a node that did not answer holds connections the listing lacks: then nobody is taken offline
    if (!complete) this.logger.warn('presence reconcile: not every NATS node answered CONNZ, taking nobody offline');
    const result = await this.presence.reconcileConnected(
      devices,
      complete ? listedAt : null,
      'presence reconciled from the NATS cluster at server start',
    );
    for (const deviceId of result.online) this.later(RESEND_AFTER_CONNECT_MS, () => this.broker.resendNeeded(deviceId));
    this.logger.log(
      `presence reconciled: ${devices.length} device connection(s) listed, ${result.online.length} now online, ${result.offline} now offline`,
    );
    return { online: result.online.length, offline: result.offline };
  }

  async onModuleDestroy(): Promise<void> {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // events taken before the stop are written while the database is still open
    await Promise.all([...this.inFlight]);
    await this.presence.drain();
  }

  private async connected(event: ClientEvent): Promise<void> {
    const device = this.identify(event);
    if (!device) return;
    const { deviceId, clientId, start } = device;
    if (clientId !== deviceId) return this.takeover(deviceId, clientId);
    await this.presence.markOnline(deviceId, 'connected', start, true);
    this.later(RESEND_AFTER_CONNECT_MS, () => this.broker.resendNeeded(deviceId));
  }

  private async disconnected(event: ClientEvent): Promise<void> {
    const device = this.identify(event);
    if (!device || device.clientId !== device.deviceId) return;
    const stop = event.client?.stop ? new Date(event.client.stop) : new Date();
    await this.presence.markOffline(device.deviceId, `disconnected: ${event.reason ?? 'unknown'}`, stop, device.start);
  }

  /** An MQTT connection of a device JWT: the device it was issued to, and the client id it used. */
  private identify(event: ClientEvent): { deviceId: string; clientId: string; start: Date } | null {
    const client = event.client;
    if (!client?.name_tag?.startsWith(DEVICE_JWT_PREFIX) || client.client_type !== 'mqtt') return null;
    return {
      deviceId: client.name_tag.slice(DEVICE_JWT_PREFIX.length),
      clientId: client.client_id ?? '',
      start: client.start ? new Date(client.start) : new Date(),
    };
  }

  private async takeover(offender: string, victim: string): Promise<void> {
    this.logger.warn(`deviceId=${offender} connected with client id ${victim}: revoking its broker JWTs`);
    this.metrics.takeover(victim);
    await this.tokens.revoke(offender);
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: TAKEOVER_REVOKED_ACTION,
      subjectType: 'device',
      subjectId: offender,
      after: { clientId: victim },
      reason: `connected to the MQTT broker with the client id of device ${victim}, replacing its session`,
    });
    // the victim was kicked (its session perhaps wiped): its agent reconnects, and its CONNECT re-sends
    this.later(RESEND_AFTER_CONNECT_MS, () => this.broker.resendNeeded(victim));
  }

  private async leaderElected(subject: string): Promise<void> {
    const stream = subject.split('.').pop() ?? '';
    if (!stream.startsWith('$MQTT_') && stream !== REPORTS_STREAM) return;
    const resent = await this.presence.onlineDeviceIds();
    this.logger.warn(`stream ${stream} elected a new leader: re-sending open commands of ${resent.length} device(s)`);
    // the reports stream itself may have dropped acknowledged reports: recently finished commands too
    for (const deviceId of resent) this.broker.resendNeeded(deviceId, stream === REPORTS_STREAM);
  }

  private later(ms: number, task: () => unknown): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      Promise.resolve()
        .then(task)
        .catch((error: Error) => this.logger.error(error.message));
    }, ms);
    this.timers.add(timer);
  }
}

/** A CONNZ entry in the shape of a connect event's client (the same fields under the same names). */
function connectionClient(connection: ConnzConnection): ClientEvent['client'] {
  return {
    start: connection.start,
    name_tag: connection.name_tag,
    client_type: connection.type,
    client_id: connection.mqtt_client,
  };
}
