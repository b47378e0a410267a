import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import {
  CancelCommand,
  Command,
  CommandType,
  CommitCommand,
  DeleteCommand,
  DeviceChannel,
  DeviceStateMessage,
  ErrorCode,
  HealthReport,
  HealthStatus,
  InstallCommand,
  JobEventType,
  JobPhase,
  PROTOCOL_VERSION,
  RebootMode,
  RebootPolicy,
  SwitchCommand,
  TrialOutcome,
  parseCommand,
} from '@cowroot/protocol';
import { DeviceError, GarbageCollector, SnapshotStore, SwitchService, SwitchState, UbootEnv } from '@cowroot/device';
import { AgentConfig } from './config/agent-config';
import { ArtifactDownloader } from './download/artifact-downloader';
import { runTrialHealthChecks } from './health/trial-health-check';
import { AGENT_STOPPING, InstallJob, isResumableSpool, rateLimitedProgress } from './install/install-job';
import { CommandJournal, StoredEvent } from './journal/command-journal';
import { AgentLogger } from './logger';
import { msUntilWindow } from './maintenance-window';
import { MqttLink } from './mqtt/mqtt-link';
import { AGENT_VERSION } from './version';

/** Event types after which a command has nothing more to do in this process. */
const TERMINAL: ReadonlySet<JobEventType> = new Set([
  JobEventType.Staged,
  JobEventType.Failed,
  JobEventType.Canceled,
  JobEventType.Completed,
  JobEventType.Confirmed,
  JobEventType.Rejected,
  JobEventType.RolledBack,
]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type EventExtra = Omit<Partial<StoredEvent>, 'commandId' | 'eventId' | 'type' | 'v' | 'at'>;

interface ActiveJob {
  commandId: string;
  type: CommandType;
  abort: AbortController;
  /** settles when the job's body has returned or thrown */
  finished: Promise<void>;
}

/** The device core objects the agent drives, built from the config and this boot's command line. */
export interface DeviceCore {
  store: SnapshotStore;
  env: UbootEnv;
  switcher: SwitchService;
  gc: GarbageCollector;
}

export async function openDeviceCore(config: AgentConfig): Promise<DeviceCore> {
  const cmdline = await readFile(config.kernelCmdlinePath, 'utf8');
  const store = new SnapshotStore({ poolPath: config.poolPath });
  const env = new UbootEnv(config.fwEnvConfig);
  const switcher = new SwitchService(env, store, cmdline, { requiredBootFiles: config.requiredBootFiles });
  const gc = new GarbageCollector(store, () => switcher.snapshotsReferenced());
  return { store, env, switcher, gc };
}

function errorOf(error: unknown): { code: ErrorCode; message: string } {
  if (error instanceof DeviceError) return { code: error.code, message: error.message.slice(0, 2048) };
  return { code: ErrorCode.Internal, message: (error instanceof Error ? error.message : String(error)).slice(0, 2048) };
}

/**
 * The on-device agent (docs/agent.md): one MQTT link, a journal that makes commands at-most-once, the
 * jobs (install, switch, commit, delete, reboot, cancel) and the verdict of a trial boot. It never throws
 * out of a command: every failure becomes a `failed` event with a protocol error code.
 */
export class Agent {
  readonly journal: CommandJournal;
  readonly link: MqttLink;
  private core!: DeviceCore;
  private installJob!: InstallJob;
  private seq = 0;
  private health: HealthReport | null = null;
  private activeJob: ActiveJob | null = null;
  private rebootTimer: NodeJS.Timeout | null = null;
  private bootHandled: Promise<void> = Promise.resolve();
  private serverReachable: Promise<boolean> = Promise.resolve(false);
  private commandChain: Promise<void> = Promise.resolve();
  private statePublishing: Promise<void> = Promise.resolve();
  private stopped = false;
  /** outbox events of an earlier run, re-sent once at the first connect */
  private resendOnConnect: StoredEvent[] = [];

  constructor(
    readonly config: AgentConfig,
    readonly logger: AgentLogger = new AgentLogger(config.deviceId),
  ) {
    this.journal = new CommandJournal(config.stateDir);
    this.link = new MqttLink(
      { deviceId: config.deviceId, credential: config.credential, url: config.mqttUrl, ca: config.ca },
      logger,
    );
  }

  async start(): Promise<void> {
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o700 });
    const { recovered } = await this.journal.load();
    if (recovered) this.logger.warn('the command journal was unreadable; kept aside, starting with an empty one');
    this.core = await openDeviceCore(this.config);
    await this.core.store.init();
    this.installJob = new InstallJob({
      store: this.core.store,
      downloader: new ArtifactDownloader(this.config.download),
      releasePublicKey: this.config.releasePublicKey,
      deviceId: this.config.deviceId,
      credential: this.config.credential,
      ca: this.config.ca,
      logger: this.logger,
    });
    const boot = this.core.switcher.boot;
    this.logger.info('agent starting', { version: AGENT_VERSION, booted: boot.snapshot, trialBoot: boot.trial });
    if (!boot.snapshot) this.logger.warn('no cowroot.snapshot= on the kernel command line; not booted by cowroot?');

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

    this.resendOnConnect = [...this.journal.outbox];
    this.link.on('connect', () => this.onConnect());
    this.link.on('command', (payload: Buffer) => {
      // commands run one after another in arrival order; cancel must not wait behind the job it cancels
      if (this.isCancel(payload)) void this.handleCommand(payload);
      else this.commandChain = this.commandChain.then(() => this.handleCommand(payload));
    });
    this.link.start();
    // the trial check "reached the server within the timeout" counts from agent start
    this.serverReachable = this.link.waitForServer(this.config.health.mqttConfirmTimeoutMs, () => this.buildState());

    for (const { commandId, record } of this.journal.running()) {
      // the agent stopped mid-job (crash, power cut); GC above removed what it left in staging, except a
      // partial download, which the next install of the same artifact resumes
      await this.emit(commandId, JobEventType.Failed, {
        error: { code: ErrorCode.Internal, message: `the agent stopped while running this ${record.type} command` },
      });
    }
    this.bootHandled = this.handleBoot().catch((error) => {
      this.logger.error('handling the boot failed', { error: errorOf(error).message });
    });
    await this.bootHandled;
    this.restoreScheduledReboot();
    await this.publishState();
  }

  /** Resolves when the device core's deferred work (the staged copy of a receive) is done. */
  async settled(): Promise<void> {
    // core is undefined when start() failed before the device core was opened
    await this.core?.store.settled();
  }

  /** Stops the agent. `graceful` = announce offline; otherwise drop the link like a reboot does. */
  async stop(graceful = true): Promise<void> {
    this.stopped = true;
    if (this.rebootTimer) clearTimeout(this.rebootTimer);
    // not a cancel: a download stopped this way keeps its spool for the next install of that artifact
    this.activeJob?.abort.abort(AGENT_STOPPING);
    await this.commandChain.catch(() => undefined);
    await this.statePublishing.catch(() => undefined);
    await this.settled();
    await this.link.stop(graceful);
    await this.journal.flush();
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
    for (const event of pending) this.send(event);
    void this.publishState();
  }

  // ---------------------------------------------------------------- events and state

  private send(event: StoredEvent): Promise<void> {
    const published = this.link
      .publish(DeviceChannel.Events, event)
      .then(() => this.journal.removeFromOutbox(event.eventId));
    published.catch((error) =>
      this.logger.warn('publishing an event failed', { commandId: event.commandId, error: errorOf(error).message }),
    );
    return published;
  }

  /**
   * Sends a job event: logged, remembered as the command's last event, kept in the persisted outbox until
   * the broker acknowledges it (progress excepted), so a `rejected` sent just before a reboot is not lost.
   * Resolves once it is recorded; `delivered` resolves at PUBACK.
   */
  private async emit(
    commandId: string,
    type: JobEventType,
    extra: EventExtra = {},
  ): Promise<{ delivered: Promise<void> }> {
    const event: StoredEvent = {
      v: PROTOCOL_VERSION,
      commandId,
      eventId: randomUUID(),
      type,
      at: new Date().toISOString(),
      ...extra,
    };
    this.logger.info(`event ${type}`, { commandId, ...extra });
    if (type !== JobEventType.Progress) {
      await this.journal.recordEvent(event, TERMINAL.has(type));
      await this.journal.addToOutbox(event);
    }
    const delivered = this.send(event);
    delivered.catch(() => undefined);
    return { delivered };
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
    };
    return { ...state, seq: ++this.seq, sentAt: new Date().toISOString() } as DeviceStateMessage;
  }

  /** Full state after every change (docs/protocol.md §5.1); serialised so seq order = publish order. */
  publishState(): Promise<void> {
    this.statePublishing = this.statePublishing
      .catch(() => undefined)
      .then(async () => {
        if (this.stopped) return;
        const state = await this.buildState();
        if (this.link.connected) await this.link.publish(DeviceChannel.State, state);
      })
      .catch((error) => this.logger.warn('publishing state failed', { error: errorOf(error).message }));
    return this.statePublishing;
  }

  // ---------------------------------------------------------------- commands

  async handleCommand(payload: Buffer): Promise<void> {
    await this.bootHandled;
    if (this.stopped) return;
    const parsed = parseCommand(payload);
    if (!parsed.ok) {
      await this.answerMalformed(payload, parsed.code, parsed.message);
      return;
    }
    const command = parsed.value;
    const { commandId } = command;
    if (!(await this.journal.begin(commandId, command.type))) {
      await this.answerDuplicate(commandId);
      return;
    }
    await this.emit(commandId, JobEventType.Accepted);
    try {
      await this.dispatch(command);
    } catch (error) {
      const { code, message } = errorOf(error);
      if (this.stopped) {
        // the agent is shutting down (service stop, reboot), nobody canceled: say so; the outbox delivers it later
        await this.emit(commandId, JobEventType.Failed, {
          error: {
            code: ErrorCode.Internal,
            message: `the agent was stopped during this ${command.type} command (${message})`,
          },
        });
      } else if (code === ErrorCode.Canceled)
        await this.emit(commandId, JobEventType.Canceled, { error: { code, message } });
      else await this.emit(commandId, JobEventType.Failed, { error: { code, message } });
    }
    await this.publishState();
  }

  private async answerMalformed(payload: Buffer, code: ErrorCode, message: string): Promise<void> {
    let commandId: string | null = null;
    try {
      const value = JSON.parse(payload.toString('utf8')) as { commandId?: unknown };
      if (typeof value?.commandId === 'string' && UUID.test(value.commandId)) commandId = value.commandId;
    } catch {
      // not JSON: nothing to answer to
    }
    this.logger.warn('malformed command', { commandId: commandId ?? undefined, code, error: message.slice(0, 1024) });
    if (!commandId) return;
    if (!(await this.journal.begin(commandId, 'malformed'))) {
      await this.answerDuplicate(commandId);
      return;
    }
    await this.emit(commandId, JobEventType.Failed, { error: { code, message: message.slice(0, 2048) } });
  }

  /** A redelivered command: acknowledged again with its last known outcome, never executed again. */
  private async answerDuplicate(commandId: string): Promise<void> {
    const record = this.journal.get(commandId);
    const last = record?.lastEvent ?? null;
    this.logger.info('duplicate command, not executed again', { commandId, lastEvent: last?.type });
    await this.emit(commandId, JobEventType.Accepted, {
      duplicate: true,
      ...(typeof last?.snapshot === 'string' ? { snapshot: last.snapshot } : {}),
    });
    // the outcome again, with its original eventId: the server keeps it once, whether it had it or not
    if (last && last.type !== JobEventType.Accepted) await this.send(last).catch(() => undefined);
  }

  private async dispatch(command: Command): Promise<void> {
    switch (command.type) {
      case CommandType.Install:
        return this.withJob(command, (abort) => this.install(command as InstallCommand, abort));
      case CommandType.Switch:
        return this.withJob(command, () => this.switchTo(command as SwitchCommand));
      case CommandType.Commit:
        return this.withJob(command, () => this.commit(command as CommitCommand));
      case CommandType.Delete:
        return this.withJob(command, () => this.delete(command as DeleteCommand));
      case CommandType.Reboot:
        return this.rebootCommand(command.commandId);
      case CommandType.Cancel:
        return this.cancel(command as CancelCommand);
    }
  }

  private async withJob(command: Command, body: (abort: AbortController) => Promise<void>): Promise<void> {
    if (this.activeJob) {
      throw new DeviceError(ErrorCode.Busy, `busy with ${this.activeJob.type} ${this.activeJob.commandId}`);
    }
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const job: ActiveJob = { commandId: command.commandId, type: command.type, abort: new AbortController(), finished };
    this.activeJob = job;
    try {
      await body(job.abort);
    } finally {
      this.activeJob = null;
      finish();
    }
  }

  private assertRebootPolicy(policy: RebootPolicy): void {
    if (policy.mode === RebootMode.Window && !policy.window) {
      throw new DeviceError(ErrorCode.MalformedMessage, 'reboot mode "window" needs a window');
    }
  }

  private async install(command: InstallCommand, abort: AbortController): Promise<void> {
    this.assertRebootPolicy(command.reboot);
    await this.assertNoTrialInProgress();
    const progress = rateLimitedProgress((phase: JobPhase, bytesDone: number, bytesTotal: number) => {
      void this.emit(command.commandId, JobEventType.Progress, { progress: { phase, bytesDone, bytesTotal } });
    });
    const outcome = await this.installJob.run(command, progress, abort.signal);
    await this.publishState();
    await this.stageTrial(command.commandId, outcome.snapshot.id, command.reboot, {
      bytesDownloaded: outcome.bytesDownloaded,
    });
  }

  private async switchTo(command: SwitchCommand): Promise<void> {
    this.assertRebootPolicy(command.reboot);
    await this.stageTrial(command.commandId, command.snapshot, command.reboot, {});
  }

  private async commit(command: CommitCommand): Promise<void> {
    this.assertRebootPolicy(command.reboot);
    await this.assertNoTrialInProgress();
    if (command.label) this.logger.info('commit label', { commandId: command.commandId, label: command.label });
    const snapshot = await this.core.store.commitWorkspace(command.snapshot);
    await this.publishState();
    await this.stageTrial(command.commandId, snapshot.id, command.reboot, {});
  }

  private async delete(command: DeleteCommand): Promise<void> {
    for (const id of command.snapshots) {
      await this.core.store.delete(id, await this.core.switcher.snapshotsInUse());
      this.logger.info('snapshot deleted', { commandId: command.commandId, snapshot: id });
    }
    await this.emit(command.commandId, JobEventType.Completed);
  }

  /** A trial being booted or confirmed blocks new work that would end in another trial. */
  private async assertNoTrialInProgress(): Promise<void> {
    const env = await this.core.switcher.readEnv();
    if (env.trial && (env.state === SwitchState.Trying || env.state === SwitchState.Confirmed)) {
      throw new DeviceError(ErrorCode.TrialPending, `snapshot ${env.trial} is being tried (${env.state})`);
    }
  }

  private async stageTrial(
    commandId: string,
    snapshot: string,
    policy: RebootPolicy,
    extra: EventExtra,
  ): Promise<void> {
    const { switcher } = this.core;
    const before = await switcher.readEnv();
    const previousTrial = this.journal.trial;
    const written = await switcher.requestTrial(snapshot);
    if (written && !written.cowroot_trial && snapshot === before.current) {
      // asking for the confirmed snapshot withdrew a requested trial: that command is canceled
      if (previousTrial)
        await this.emit(previousTrial.commandId, JobEventType.Canceled, { snapshot: previousTrial.snapshot });
      await this.journal.setTrial(null);
      await this.emit(commandId, JobEventType.Completed, { snapshot });
      return;
    }
    if (!written && snapshot === before.current) {
      await this.emit(commandId, JobEventType.Completed, { snapshot });
      return;
    }
    if (previousTrial && previousTrial.commandId !== commandId) {
      // a requested trial was replaced by this one
      await this.emit(previousTrial.commandId, JobEventType.Canceled, {
        snapshot: previousTrial.snapshot,
        error: { code: ErrorCode.Canceled, message: `replaced by the trial of ${snapshot} (${commandId})` },
      });
    }
    await this.journal.setTrial({
      commandId,
      snapshot,
      fallback: before.current || null,
      requestedAt: new Date().toISOString(),
    });
    await this.emit(commandId, JobEventType.Staged, { snapshot, ...extra });
    await this.publishState();
    if (policy.mode === RebootMode.Now) {
      await this.rebootNow(commandId);
    } else if (policy.mode === RebootMode.Window && policy.window) {
      await this.journal.setScheduledReboot({
        commandId,
        window: { start: policy.window.start, end: policy.window.end },
      });
      this.restoreScheduledReboot();
    }
  }

  private restoreScheduledReboot(): void {
    const scheduled = this.journal.scheduledReboot;
    if (this.rebootTimer) clearTimeout(this.rebootTimer);
    this.rebootTimer = null;
    if (!scheduled || this.stopped) return;
    const delay = msUntilWindow(new Date(), scheduled.window, this.config.maintenanceTimezone);
    this.logger.info('reboot scheduled in the maintenance window', {
      commandId: scheduled.commandId,
      window: `${scheduled.window.start}-${scheduled.window.end}`,
      inMs: delay,
    });
    // timers cap at ~24.8 days; a window is at most a day away
    this.rebootTimer = setTimeout(() => {
      this.rebootTimer = null;
      void this.rebootInWindow(scheduled.commandId);
    }, delay);
  }

  private async rebootInWindow(commandId: string): Promise<void> {
    await this.journal.setScheduledReboot(null);
    const env = await this.core.switcher.readEnv();
    if (env.state !== SwitchState.Requested) {
      this.logger.info('maintenance window reached but no trial is requested any more; not rebooting', { commandId });
      return;
    }
    await this.rebootNow(commandId);
  }

  private async rebootCommand(commandId: string): Promise<void> {
    await this.emit(commandId, JobEventType.Completed);
    await this.rebootNow(commandId);
  }

  /** `rebooting`, a short wait for it to reach the broker, then the configured reboot command. */
  private async rebootNow(commandId: string): Promise<void> {
    const { delivered } = await this.emit(commandId, JobEventType.Rebooting);
    await Promise.race([delivered.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    await this.journal.flush();
    const [command, ...args] = this.config.rebootCommand;
    this.logger.info('rebooting', { commandId, command: this.config.rebootCommand.join(' ') });
    await new Promise<void>((resolve) => {
      execFile(command, args, { timeout: 60_000 }, (error, _stdout, stderr) => {
        if (error)
          this.logger.error('the reboot command failed', { commandId, error: error.message, stderr: stderr.trim() });
        resolve();
      });
    });
  }

  private async cancel(command: CancelCommand): Promise<void> {
    const target = command.targetCommandId;
    const job = this.activeJob?.commandId === target ? this.activeJob : null;
    if (job) {
      // the job itself reports `canceled` when its download or receive stops; one that had already
      // requested its trial finishes, and the trial is withdrawn below
      job.abort.abort();
      await job.finished;
    }
    const trial = this.journal.trial;
    if (trial?.commandId === target) {
      await this.core.switcher.cancelTrial(); // TRIAL_PENDING when u-boot already started it
      await this.journal.setTrial(null);
      if (this.journal.scheduledReboot?.commandId === target) {
        await this.journal.setScheduledReboot(null);
        this.restoreScheduledReboot();
      }
      await this.emit(target, JobEventType.Canceled, {
        snapshot: trial.snapshot,
        error: { code: ErrorCode.Canceled, message: `canceled by ${command.commandId}` },
      });
      await this.emit(command.commandId, JobEventType.Completed);
      return;
    }
    if (!job) this.logger.info('nothing to cancel', { commandId: command.commandId, target });
    await this.emit(command.commandId, JobEventType.Completed);
  }

  // ---------------------------------------------------------------- boot

  /**
   * What this boot means (docs/agent.md §5): a trial boot gets its health checks and is confirmed or
   * rejected; a boot after a fallback reports `rolled-back` once; a boot of a confirmed trial closes it.
   */
  private async handleBoot(): Promise<void> {
    const { switcher } = this.core;
    const boot = switcher.boot;
    const env = await switcher.readEnv();
    const trial = this.journal.trial;
    if (boot.trial && boot.snapshot) {
      if (trial?.snapshot === boot.snapshot && trial.verdict === 'rejected') {
        // rejected before a restart that came before the reboot: finish what was started
        this.logger.warn('trial already rejected in this boot; rebooting into the fallback', {
          commandId: trial.commandId,
        });
        await this.rebootNow(trial.commandId);
        return;
      }
      if (env.trial === boot.snapshot && env.state === SwitchState.Confirmed) {
        this.logger.info('trial already confirmed in this boot', { snapshot: boot.snapshot });
        return;
      }
      if (env.trial === boot.snapshot && env.state === SwitchState.Trying) {
        await this.judgeTrial(boot.snapshot, env.trial);
        return;
      }
      this.logger.warn('trial boot without a matching trial in the env; no verdict', {
        booted: boot.snapshot,
        envTrial: env.trial,
        envState: env.state,
      });
      return;
    }
    if (!trial) return;
    if (env.state !== SwitchState.Idle || env.trial || env.resultSnapshot !== trial.snapshot) return;
    if (env.result === TrialOutcome.Accepted) {
      this.logger.info('trial accepted by the bootloader', { commandId: trial.commandId, snapshot: trial.snapshot });
      await this.journal.setTrial(null);
      return;
    }
    const by =
      env.result === TrialOutcome.HealthRejected
        ? ('health-check' as const)
        : env.result === TrialOutcome.KernelLoadFailed
          ? ('kernel-load' as const)
          : env.result === TrialOutcome.BootloaderFallback
            ? ('bootloader' as const)
            : null;
    if (!by) return;
    const status = await switcher.status();
    const check = trial.check ?? status.lastTrialResult?.check;
    const outputTail = trial.outputTail ?? status.lastTrialResult?.outputTail;
    await this.emit(trial.commandId, JobEventType.RolledBack, {
      snapshot: trial.snapshot,
      rollback: {
        snapshot: trial.snapshot,
        restoredSnapshot: boot.snapshot ?? env.current,
        by,
        ...(check ? { check } : {}),
        ...(outputTail ? { outputTail: outputTail.slice(-4096) } : {}),
      },
      ...(by === 'health-check'
        ? {}
        : {
            error: {
              code: ErrorCode.BootloaderFallback,
              message:
                by === 'kernel-load'
                  ? `u-boot could not load the kernel of ${trial.snapshot}`
                  : `the trial boot of ${trial.snapshot} was never confirmed; u-boot fell back`,
            },
          }),
    });
    await this.journal.setTrial(null);
  }

  private async judgeTrial(snapshot: string, envTrial: string): Promise<void> {
    const trial = this.journal.trial?.snapshot === snapshot ? this.journal.trial : null;
    this.health = { status: HealthStatus.Pending, checkedAt: new Date().toISOString(), checks: [] };
    await this.publishState();
    const { report, failed } = await runTrialHealthChecks({
      store: this.core.store,
      expectedSnapshot: snapshot,
      envTrial,
      rootfsPath: this.config.health.rootfsPath,
      requiredDir: this.config.health.requiredDir,
      wantedDir: this.config.health.wantedDir,
      checkTimeoutMs: this.config.health.checkTimeoutMs,
      serverReachable: this.serverReachable,
      mqttConfirmTimeoutMs: this.config.health.mqttConfirmTimeoutMs,
    });
    this.health = report;
    for (const check of report.checks) {
      this.logger.info(`health check ${check.name}: ${check.passed ? 'passed' : 'FAILED'}`, {
        commandId: trial?.commandId,
        kind: check.kind,
        durationMs: check.durationMs,
        ...(check.passed ? {} : { outputTail: check.outputTail?.slice(-512) }),
      });
    }
    if (!failed) {
      await this.core.switcher.confirm();
      if (trial) {
        await this.journal.setTrial({ ...trial, verdict: 'confirmed' });
        await this.emit(trial.commandId, JobEventType.Confirmed, { snapshot });
      }
      await this.publishState();
      return;
    }
    await this.core.switcher.reject({ check: failed.name, outputTail: failed.outputTail });
    const commandId = trial?.commandId;
    if (trial) {
      await this.journal.setTrial({ ...trial, verdict: 'rejected', check: failed.name, outputTail: failed.outputTail });
      await this.emit(trial.commandId, JobEventType.Rejected, {
        snapshot,
        error: {
          code: ErrorCode.HealthCheckFailed,
          message: `health check ${failed.name} failed: ${(failed.outputTail ?? '').slice(-1024)}`,
        },
      });
    }
    await this.publishState();
    if (commandId) await this.rebootNow(commandId);
    else await this.rebootWithoutCommand();
  }

  private async rebootWithoutCommand(): Promise<void> {
    const [command, ...args] = this.config.rebootCommand;
    this.logger.info('rebooting into the fallback', { command: this.config.rebootCommand.join(' ') });
    await new Promise<void>((resolve) => execFile(command, args, { timeout: 60_000 }, () => resolve()));
  }
}
