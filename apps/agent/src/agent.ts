import { mkdir } from 'node:fs/promises';
import {
  CommandType,
  DeviceChannel,
  DeviceStateMessage,
  ErrorCode,
  HealthReport,
  JobEventType,
  PROTOCOL_VERSION,
  Command,
  ParseResult,
  parseCommand,
} from '@cowroot/protocol';
import { CommandRunner, READABLE_DELTA_FORMATS } from '@cowroot/device';
import { BootHandler } from './boot/boot-handler';
import { CommandContext } from './commands/command-context';
import { dispatchCommand } from './commands/dispatch-command';
import { JobSlot } from './commands/job-slot';
import { AgentConfig } from './config/agent-config';
import { DeviceCore, openDeviceCore } from './device-core';
import { ArtifactDownloader } from './download/artifact-downloader';
import { errorOf, isDiskFull } from './events/error-of';
import { JobEvents } from './events/job-events';
import { AGENT_STOPPING, InstallJob, isResumableSpool } from './install/install-job';
import { CommandJournal, StoredEvent } from './journal/command-journal';
import { AgentLogger } from './logger';
import { fetchBrokerToken } from './mqtt/broker-token';
import { MqttLink } from './mqtt/mqtt-link';
import { Rebooter } from './reboot/rebooter';
import { DowngradeGuard } from './security/downgrade-guard';
import { AGENT_VERSION } from './version';

/** How long a state report's PUBACK may hold up what follows it. */
const STATE_PUBACK_WAIT_MS = 5000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The on-device agent (docs/agent.md): one MQTT link, a journal that makes commands at-most-once, a queue
 * of commands (commands/*.ts, one after another; cancel at once) and the verdict of a trial boot
 * (boot/). It never throws out of a command: every command ends in a reported outcome, and the queue goes
 * on after any error, a full disk included (DISK_FULL, docs/agent.md §3).
 */
export class Agent {
  readonly journal: CommandJournal;
  readonly link: MqttLink;
  private core!: DeviceCore;
  private ctx!: CommandContext;
  private readonly events: JobEvents;
  private readonly reboots: Rebooter;
  private readonly jobs = new JobSlot();
  private readonly security: DowngradeGuard;
  private seq = 0;
  private health: HealthReport | null = null;
  private bootHandled: Promise<void> = Promise.resolve();
  private serverReachable: Promise<boolean> = Promise.resolve(false);
  private commandChain: Promise<void> = Promise.resolve();
  private statePublishing: Promise<void> = Promise.resolve();
  private stopped = false;
  /** outbox events of an earlier run, re-sent once at the first connect (receipts mode re-sends on every one) */
  private resendOnConnect: StoredEvent[] = [];

  constructor(
    readonly config: AgentConfig,
    readonly logger: AgentLogger = new AgentLogger(config.deviceId),
    runner: CommandRunner = new CommandRunner(),
  ) {
    this.journal = new CommandJournal(config.stateDir);
    this.link = new MqttLink(
      {
        deviceId: config.deviceId,
        credential: config.credential,
        url: config.mqttUrl,
        failoverUrls: config.failoverMqttUrls,
        ca: config.ca,
        password:
          config.mqttAuth === 'token'
            ? () => fetchBrokerToken(config.httpUrl, config.deviceId, config.credential, config.ca)
            : undefined,
        receipts: config.mqttAuth === 'token',
      },
      logger,
    );
    this.events = new JobEvents(this.journal, this.link, logger, config.mqttAuth === 'token');
    this.security = new DowngradeGuard(config.stateDir, logger);
    this.reboots = new Rebooter({
      rebootCommand: config.rebootCommand,
      maintenanceTimezone: config.maintenanceTimezone,
      journal: this.journal,
      events: this.events,
      logger,
      runner,
      switchState: async () => (await this.core.switcher.readEnv()).state,
    });
  }

  async start(): Promise<void> {
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o700 });
    const { recovered } = await this.journal.load();
    if (recovered) this.logger.warn('the command journal was unreadable; kept aside, starting with an empty one');
    await this.security.load();
    this.core = await openDeviceCore(this.config);
    await this.core.store.init();
    this.ctx = {
      config: this.config,
      core: this.core,
      journal: this.journal,
      events: this.events,
      reboots: this.reboots,
      logger: this.logger,
      jobs: this.jobs,
      security: this.security,
      installJob: new InstallJob({
        store: this.core.store,
        downloader: new ArtifactDownloader(this.config.download),
        releasePublicKey: this.config.releasePublicKey,
        deviceId: this.config.deviceId,
        credential: this.config.credential,
        artifactOrigin: this.config.artifactOrigin,
        ca: this.config.ca,
        logger: this.logger,
      }),
      publishState: () => this.publishState(),
    };
    const boot = this.core.switcher.boot;
    this.logger.info('agent starting', { version: AGENT_VERSION, booted: boot.snapshot, trialBoot: boot.trial });
    if (!boot.snapshot) this.logger.warn('no cowroot.snapshot= on the kernel command line; not booted by cowroot?');
    await this.collectGarbage();

    // token auth is the NATS cluster: its receipts, not the PUBACK, take an event out of the outbox
    if (this.config.mqttAuth === 'token') this.events.watchReceipts();
    else this.resendOnConnect = [...this.journal.outbox];
    this.link.on('connect', () => this.onConnect());
    this.link.on('command', (payload: Buffer) => this.enqueue(payload));
    await this.link.start();
    // the trial check "reached the server within the timeout" counts from agent start
    this.serverReachable = this.link.waitForServer(this.config.health.mqttConfirmTimeoutMs, () => this.buildState());

    for (const { commandId, record } of this.journal.running()) {
      // the agent stopped mid-job (crash, power cut); GC above removed what it left in staging, except a
      // partial download, which the next install of the same artifact resumes
      await this.reportFailure(commandId, {
        code: ErrorCode.Internal,
        message: `the agent stopped while running this ${record.type} command`,
      });
    }
    const bootHandler = new BootHandler({
      config: this.config,
      core: this.core,
      journal: this.journal,
      events: this.events,
      reboots: this.reboots,
      logger: this.logger,
      serverReachable: () => this.serverReachable,
      setHealth: (report) => (this.health = report),
      publishState: () => this.publishState(),
    });
    this.bootHandled = bootHandler
      .handle()
      .catch((error) => this.logger.error('handling the boot failed', { error: errorOf(error).message }))
      .then(() => this.settleDowngradeFloor())
      .catch((error) => this.logger.error('updating the downgrade floor failed', { error: errorOf(error).message }));
    await this.bootHandled;
    this.reboots.restoreScheduled();
    await this.publishState();
  }

  /** A normal boot of the confirmed snapshot raises the floor to its security version (docs/agent.md §4.3). */
  private async settleDowngradeFloor(): Promise<void> {
    const { boot } = this.core.switcher;
    const env = await this.core.switcher.readEnv();
    const confirmed = !boot.trial && boot.snapshot && boot.snapshot === env.current ? boot.snapshot : null;
    const existing = new Set((await this.core.store.list()).map((snapshot) => snapshot.id));
    await this.security.settle(confirmed, existing);
  }

  private async collectGarbage(): Promise<void> {
    try {
      const stagingDir = this.core.store.stagingDir;
      const collected = await this.core.gc.collectAtStart(this.config.retention, {
        keepEntry: (name) => isResumableSpool(stagingDir, name),
      });
      this.logger.info('garbage collection done', {
        staging: [...collected.staging.subvolumes, ...collected.staging.entries],
        keptForResume: collected.staging.kept,
        deleted: collected.deleted,
      });
    } catch (error) {
      this.logger.error('garbage collection failed', { error: errorOf(error).message });
    }
  }

  /** Resolves when the device core's deferred work (the staged copy of a receive) is done. */
  async settled(): Promise<void> {
    // core is undefined when start() failed before the device core was opened
    await this.core?.store.settled();
  }

  /** Stops the agent. `graceful` = announce offline; otherwise drop the link like a reboot does. */
  async stop(graceful = true): Promise<void> {
    this.stopped = true;
    this.reboots.stop();
    this.events.stop();
    // not a cancel: a download stopped this way keeps its spool for the next install of that artifact
    this.jobs.abort(AGENT_STOPPING);
    await this.commandChain;
    await this.statePublishing;
    await this.settled();
    await this.link.stop(graceful);
    await this.journal.flush();
  }

  /** Commands run one after another in arrival order; cancel must not wait behind the job it cancels. */
  private enqueue(payload: Buffer): void {
    if (this.isCancel(payload)) {
      void this.handleCommand(payload);
      return;
    }
    // handleCommand never rejects; the catch keeps the chain alive even if that promise were broken
    this.commandChain = this.commandChain
      .then(() => this.handleCommand(payload))
      .catch((error) => this.logger.error('the command queue caught an error', { error: errorOf(error).message }));
  }

  private isCancel(payload: Buffer): boolean {
    try {
      const value = JSON.parse(payload.toString('utf8')) as { type?: unknown };
      return value?.type === CommandType.Cancel;
    } catch {
      return false;
    }
  }

  private onConnect(): void {
    const pending = this.resendOnConnect;
    this.resendOnConnect = [];
    for (const event of pending) void this.events.send(event).catch(() => undefined);
    void this.publishState();
  }

  async buildState(): Promise<DeviceStateMessage> {
    const { store, switcher } = this.core;
    const status = await switcher.status();
    const freeBytes = await store.freeBytes().catch(() => undefined);
    const state: Omit<DeviceStateMessage, 'seq' | 'sentAt'> = {
      v: PROTOCOL_VERSION,
      agentVersion: AGENT_VERSION,
      bootedSnapshot: status.booted ?? 'unknown',
      trialBoot: status.trialBoot,
      fallbackSnapshot: status.fallback,
      pendingTrial: status.pendingTrial,
      lastTrialResult: status.lastTrialResult,
      snapshots: await store.list(),
      health: this.health,
      ...(freeBytes !== undefined ? { freeBytes } : {}),
      // the server offers a delta only in a format listed here (docs/protocol.md §5.1)
      deltaFormats: [...READABLE_DELTA_FORMATS],
    };
    return { ...state, seq: ++this.seq, sentAt: new Date().toISOString() } as DeviceStateMessage;
  }

  /**
   * Full state after every change (docs/protocol.md §5.1); serialised so seq order = publish order. Resolves at
   * the PUBACK or after STATE_PUBACK_WAIT_MS, whichever comes first. Never rejects.
   */
  publishState(): Promise<void> {
    this.statePublishing = this.statePublishing
      .then(async () => {
        if (this.stopped) return;
        const state = await this.buildState();
        if (!this.link.connected) return;
        const published = this.link.publish(DeviceChannel.State, state);
        published.catch((error) => this.logger.warn('publishing state failed', { error: errorOf(error).message }));
        // a broker that stopped answering must not hold a job, the command queue or a stop until the
        // keepalive notices (45 s): the next state supersedes this one, and the next connect sends one
        await Promise.race([published, new Promise((resolve) => setTimeout(resolve, STATE_PUBACK_WAIT_MS).unref())]);
      })
      .catch((error) => this.logger.warn('publishing state failed', { error: errorOf(error).message }));
    return this.statePublishing;
  }

  /** One command, from payload to reported outcome. Never rejects (docs/agent.md §3). */
  async handleCommand(payload: Buffer): Promise<void> {
    await this.bootHandled;
    if (this.stopped) return;
    let commandId: string | null = null;
    try {
      const parsed = safeParseCommand(payload);
      if (!parsed.ok) {
        commandId = readCommandId(payload);
        await this.answerMalformed(commandId, parsed.code, parsed.message);
        return;
      }
      commandId = parsed.value.commandId;
      await this.execute(parsed.value);
    } catch (error) {
      // the journal could not be written (a full disk), or a bug: the command still gets an outcome
      const { code, message } = errorOf(error);
      this.logger.error('a command failed outside its handler', {
        commandId: commandId ?? undefined,
        code,
        error: message,
      });
      if (commandId) await this.reportFailure(commandId, { code, message });
    } finally {
      await this.publishState();
    }
  }

  private async execute(command: Command): Promise<void> {
    const { commandId } = command;
    if (!(await this.journal.begin(commandId, command.type))) {
      await this.answerDuplicate(commandId);
      return;
    }
    await this.events.emit(commandId, JobEventType.Accepted);
    try {
      await dispatchCommand(this.ctx, command);
    } catch (error) {
      const { code, message } = errorOf(error);
      if (this.stopped) {
        // the agent is shutting down (service stop, reboot), nobody canceled: say so; the outbox delivers it later
        await this.events.emit(commandId, JobEventType.Failed, {
          error: {
            code: ErrorCode.Internal,
            message: `the agent was stopped during this ${command.type} command (${message})`,
          },
        });
      } else if (code === ErrorCode.Canceled) {
        await this.events.emit(commandId, JobEventType.Canceled, { error: { code, message } });
      } else {
        await this.events.emit(commandId, JobEventType.Failed, { error: { code, message } });
      }
    }
  }

  /** `failed`, recorded when the journal can be written, sent without it when the disk is full. */
  private async reportFailure(commandId: string, error: { code: ErrorCode; message: string }): Promise<void> {
    try {
      await this.events.emit(commandId, JobEventType.Failed, { error });
    } catch (journalError) {
      const reported = isDiskFull(journalError)
        ? { code: ErrorCode.DiskFull, message: `${error.message} (the journal cannot be written: no space left)` }
        : error;
      await this.events.emitUnrecorded(commandId, JobEventType.Failed, {
        error: { code: reported.code, message: reported.message.slice(0, 2048) },
      });
    }
  }

  private async answerMalformed(commandId: string | null, code: ErrorCode, message: string): Promise<void> {
    this.logger.warn('malformed command', { commandId: commandId ?? undefined, code, error: message.slice(0, 1024) });
    if (!commandId) return;
    if (!(await this.journal.begin(commandId, 'malformed'))) {
      await this.answerDuplicate(commandId);
      return;
    }
    await this.events.emit(commandId, JobEventType.Failed, { error: { code, message: message.slice(0, 2048) } });
  }

  /** A redelivered command: acknowledged again with its last known outcome, never executed again. */
  private async answerDuplicate(commandId: string): Promise<void> {
    const record = this.journal.get(commandId);
    const last = record?.lastEvent ?? null;
    this.logger.info('duplicate command, not executed again', { commandId, lastEvent: last?.type });
    await this.events.acknowledgeDuplicate(commandId, {
      ...(typeof last?.snapshot === 'string' ? { snapshot: last.snapshot } : {}),
    });
    // the outcome again, with its original eventId: the server keeps it once, whether it had it or not
    if (last && last.type !== JobEventType.Accepted) await this.events.send(last).catch(() => undefined);
  }
}

/** parseCommand, with any exception (a payload nested deep enough to overflow the stack) as MALFORMED_MESSAGE. */
function safeParseCommand(payload: Buffer): ParseResult<Command> {
  try {
    return parseCommand(payload);
  } catch (error) {
    return {
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: `the command cannot be parsed: ${(error as Error).message}`,
    };
  }
}

/** The commandId of a payload that did not parse as a command, when it has a readable UUID one. */
function readCommandId(payload: Buffer): string | null {
  try {
    const value = JSON.parse(payload.toString('utf8')) as { commandId?: unknown };
    return typeof value?.commandId === 'string' && UUID.test(value.commandId) ? value.commandId : null;
  } catch {
    return null; // not JSON: nothing to answer to
  }
}
