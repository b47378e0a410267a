import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import {
  DeviceChannel,
  PROTOCOL_VERSION,
  encodeMessage,
  type DeviceChannel as Channel,
  type ReportReceiptMessage,
} from '@cowroot/protocol';
import { isUUID } from 'class-validator';
import {
  AckPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type ConsumerMessages,
  type JsMsg,
  type StreamConfig,
} from 'nats';
import { KeyedSerialQueue } from '../../devices/keyed-serial-queue';
import { DeviceMessageHandler, Rejection, SessionRef } from '../device-message-handler';
import { EventsHandler } from '../events.handler';
import { MqttMetrics } from '../mqtt-metrics';
import { NoticeBudget } from '../notice-budget';
import { rejectionNotice } from '../rejection-notice';
import { StateHandler } from '../state.handler';
import { NatsConnections } from './nats-connections';
import { whileJetStreamForms } from './jetstream-forming';
import { INGEST_CONSUMER, REPORTS_STREAM, REPORT_SUBJECTS, deviceSubject, parseReportSubject } from './nats-subjects';

/** A replica that dies holding a report: JetStream gives it to another replica after this long. */
const ACK_WAIT_MS = 30_000;
/** Reports a replica holds unacknowledged at once: enough for the writers' group commit to fill. */
const IN_FLIGHT = 2000;
/**
 * Each pull request lives this long (nats.js default 30 s, heartbeats at half of it). A pull parked on a node
 * that died is noticed only after two missed heartbeats: with the default, reports waited ~30 s after a node
 * kill (agent-on-cluster spec); with 5 s, ~5 s, for one pull request per replica every 5 s.
 */
const PULL_EXPIRES_MS = 5000;
/** After a storage failure the report comes back after this long (the database may be failing over). */
const RETRY_DELAY_MS = 2000;

/** Reports come from the stream, not from a connection: there is no session to compare against. */
const NO_SESSION: SessionRef = { close: () => undefined };

/**
 * BROKER=nats ingest: devices' QoS 1 reports (state, events) land in the JetStream stream COWROOT_REPORTS;
 * every replica pulls from the one durable consumer `ingest`, so each report goes to one replica, and acks
 * it only after the same handlers as the embedded broker's have committed it. A replica that crashes
 * holding reports loses nothing: JetStream redelivers them after ACK_WAIT_MS, and the handlers drop what
 * was already stored (event ids, state seq), so each report is applied exactly once.
 */
@Injectable()
export class NatsReportConsumer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(NatsReportConsumer.name);
  private readonly handlers: ReadonlyMap<string, DeviceMessageHandler>;
  private readonly queue = new KeyedSerialQueue();
  private readonly notices = new NoticeBudget();
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;

  constructor(
    private readonly nats: NatsConnections,
    private readonly metrics: MqttMetrics,
    state: StateHandler,
    events: EventsHandler,
  ) {
    this.handlers = new Map<string, DeviceMessageHandler>([state, events].map((h) => [h.channel, h]));
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.ensureStream();
    this.loop = this.consumeForever();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    // reports taken before the stop are still written and acknowledged
    await this.queue.drain();
    await Promise.all([...this.handlers.values()].map((handler) => handler.drain()));
  }

  /** Creates the stream and the consumer if missing (every replica tries; the first one wins). */
  private async ensureStream(): Promise<void> {
    const jsm = this.nats.jsm;
    const exists = await jsm.streams.info(REPORTS_STREAM).then(
      () => true,
      () => false,
    );
    if (!exists) {
      const stream = {
        name: REPORTS_STREAM,
        subjects: REPORT_SUBJECTS,
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        max_age: nanos(7 * 24 * 3600 * 1000),
      };
      await this.addStream(stream);
    }
    await whileJetStreamForms(
      INGEST_CONSUMER,
      () =>
        jsm.consumers.add(REPORTS_STREAM, {
          durable_name: INGEST_CONSUMER,
          ack_policy: AckPolicy.Explicit,
          ack_wait: nanos(ACK_WAIT_MS),
          max_ack_pending: -1,
        }),
      (message) => this.logger.warn(message),
    );
  }

  /**
   * R3, or R1 where three replicas cannot exist. A freshly started cluster answers 503 or "no suitable peers
   * for placement" for a few seconds (jetstream-forming.ts): retried, never taken as a reason for R1.
   */
  private async addStream(stream: Partial<StreamConfig> & { name: string }): Promise<void> {
    const jsm = this.nats.jsm;
    await whileJetStreamForms(
      REPORTS_STREAM,
      async () => {
        try {
          await jsm.streams.add({ ...stream, num_replicas: 3 });
        } catch (error) {
          // a single node (or a two-node test cluster) cannot hold three replicas
          if (!/replicas|insufficient resources/i.test((error as Error).message)) throw error;
          await jsm.streams.add({ ...stream, num_replicas: 1 });
        }
      },
      (message) => this.logger.warn(message),
    );
  }

  private async consumeForever(): Promise<void> {
    while (!this.stopping) {
      try {
        const consumer = await this.nats.js.consumers.get(REPORTS_STREAM, INGEST_CONSUMER);
        this.messages = await consumer.consume({ max_messages: IN_FLIGHT, expires: PULL_EXPIRES_MS });
        for await (const message of this.messages) this.take(message);
      } catch (error) {
        if (this.stopping) break;
        this.logger.warn(`report consumer interrupted, resuming: ${(error as Error).message}`);
      }
      if (!this.stopping) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  private take(message: JsMsg): void {
    const parsed = parseReportSubject(message.subject);
    const handler = parsed && this.handlers.get(parsed.channel);
    if (!parsed || !handler) {
      this.logger.warn(`report on ${message.subject} has no handler: dropped`);
      message.term();
      return;
    }
    const { deviceId } = parsed;
    const channel = handler.channel;
    this.metrics.received(channel);
    // one device's reports in stream order, as the embedded broker hands over one connection's packets
    this.queue
      .run(deviceId, () => handler.handle(deviceId, Buffer.from(message.data), NO_SESSION))
      .then(
        (rejection) => {
          if (rejection) this.rejected(deviceId, channel, rejection);
          message.ack();
          if (channel === DeviceChannel.Events) this.receipt(deviceId, message.data);
        },
        (error: Error) => {
          this.logger.error(`deviceId=${deviceId} channel=${channel} not stored, redelivery later: ${error.message}`);
          message.nak(RETRY_DELAY_MS);
        },
      );
  }

  /**
   * docs/protocol.md §5.4: the device keeps a job event in its outbox until this says the server is done with
   * it (stored, or refused for good), because NATS's PUBACK came before the stream stored it. QoS 0: a lost
   * receipt costs one resend, which is answered with another.
   */
  private receipt(deviceId: string, payload: Uint8Array): void {
    const eventId = eventIdOf(payload);
    if (!eventId) return;
    const receipt: ReportReceiptMessage = { v: PROTOCOL_VERSION, eventIds: [eventId] };
    this.nats.app.publish(deviceSubject(deviceId, DeviceChannel.Receipts), encodeMessage(receipt));
  }

  /** docs/protocol.md §7.1, as the embedded broker: counted, and the device told (a few per second). */
  private rejected(deviceId: string, channel: Channel, rejection: Rejection): void {
    this.metrics.reject(deviceId, channel, rejection.reason, rejection.detail);
    const suppressed = this.notices.take(deviceId, Date.now());
    if (suppressed === null) return;
    const notice = rejectionNotice(channel, rejection, suppressed);
    this.nats.app.publish(deviceSubject(deviceId, DeviceChannel.Rejections), encodeMessage(notice));
  }
}

/** The eventId of a job event payload, if it has a well-formed one (a malformed event is refused, and named if it can be). */
function eventIdOf(payload: Uint8Array): string | null {
  try {
    const eventId = (JSON.parse(Buffer.from(payload).toString('utf8')) as { eventId?: unknown }).eventId;
    return typeof eventId === 'string' && isUUID(eventId) ? eventId : null;
  } catch {
    return null;
  }
}
