import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Command,
  CommandType,
  DeviceChannel,
  DeviceStateMessage,
  ErrorCode,
  InstallCommand,
  JobEventMessage,
  JobEventType,
  JobPhase,
  LastTrialResult,
  PROTOCOL_VERSION,
  PendingTrial,
  RebootMode,
  SnapshotInfo,
  SnapshotOrigin,
  RollbackCause,
  TrialOutcome,
  TrialState,
  parseCommand,
  parseManifest,
} from '@cowroot/protocol';
import { DeviceLink, DeviceLinkOptions } from './device-link';
import { SimOutcome } from './sim-outcome';

/**
 * `reconnect`: behave like the agent when the broker goes away (a NATS node killed): reconnect to the next
 * URL until it works, keep every message until it is acknowledged, and answer a re-sent command with the
 * events already reported for it (same event ids), so a report lost inside the broker is reported again.
 * `mqttPassword` with BROKER=nats: a broker JWT fetched over HTTPS against the credential, as the agent's
 * `server.mqttAuth: "token"` does.
 */
export interface SimulatedDeviceOptions extends DeviceLinkOptions {
  outcome: SimOutcome;
  /** how long a simulated reboot keeps the device offline */
  rebootMs?: number;
  /** simulated link speed for downloads that are not really fetched; 0 = instant */
  linkBytesPerSecond?: number;
  /** really download the artifact over HTTP (Range-less GET, sha256 checked) instead of simulating it */
  realDownload?: boolean;
  /** snapshots held at start; default: one factory snapshot `factory` */
  snapshots?: SnapshotInfo[];
  agentVersion?: string;
  /** the delta formats the state report lists; default: none listed (an agent older than the field) */
  deltaFormats?: number[];
}

export interface SimulatedDeviceEvents {
  onEvent?: (deviceId: string, event: JobEventMessage) => void;
}

/** The snapshot a simulated device holds from the factory (bench:rollout's baselines send it too). */
export function factorySnapshot(): SnapshotInfo {
  return {
    id: 'factory',
    uuid: randomUUID(),
    receivedUuid: null,
    parentUuid: null,
    readOnly: true,
    origin: SnapshotOrigin.Factory,
    release: null,
    createdAt: new Date().toISOString(),
  };
}

/**
 * A test tool, not a device implementation (the real one is apps/agent): plays one device over real MQTT
 * with the real protocol messages, following the switch protocol's observable behaviour, with a scripted
 * outcome. Used by rollout tests and the load benchmark.
 */
export class SimulatedDevice {
  readonly id: string;
  outcome: SimOutcome;
  private readonly link: DeviceLink;
  private seq = 0;
  private booted: string;
  private current: string;
  private trialBoot = false;
  private pendingTrial: PendingTrial | null = null;
  private lastTrialResult: LastTrialResult | null = null;
  private readonly snapshots: SnapshotInfo[];
  private readonly handled = new Map<string, JobEventType>();
  private work: Promise<void> = Promise.resolve();
  private rebooting = false;
  private readonly reported = new Map<string, JobEventMessage[]>();
  /** every distinct install command id this device received */
  readonly installCommandIds = new Set<string>();

  constructor(
    private readonly options: SimulatedDeviceOptions,
    private readonly hooks: SimulatedDeviceEvents = {},
  ) {
    this.id = options.id;
    this.link = new DeviceLink(options, {
      // Commands run one at a time, in arrival order, as on the real agent.
      onCommand: (payload) => {
        this.work = this.work.then(() => this.handle(payload)).catch(() => undefined);
      },
      // a reboot ends the connection on purpose and connects again itself
      onLost: () => {
        if (!this.rebooting) void this.connectRetrying();
      },
    });
    this.outcome = options.outcome;
    this.snapshots = options.snapshots ? [...options.snapshots] : [factorySnapshot()];
    this.booted = this.snapshots[0].id;
    this.current = this.booted;
  }

  get snapshotIds(): string[] {
    return this.snapshots.map((s) => s.id);
  }

  get bootedSnapshot(): string {
    return this.booted;
  }

  get connected(): boolean {
    return this.link.connected;
  }

  /** seq of the last state report sent (-1 before the first): what the server's devices.state_seq reaches */
  get lastStateSeq(): number {
    return this.seq - 1;
  }

  /** Connects (the agent's start) and reports presence and state. */
  async connect(): Promise<void> {
    await this.link.open();
    await this.publishState();
  }

  async stop(): Promise<void> {
    await this.link.stop();
  }

  /** Publishes a state report now (the benchmark uses this to measure ingest). */
  async publishState(): Promise<void> {
    const state: DeviceStateMessage = {
      v: PROTOCOL_VERSION,
      seq: this.seq++,
      sentAt: new Date().toISOString(),
      agentVersion: this.options.agentVersion ?? 'fleet-sim',
      bootedSnapshot: this.booted,
      trialBoot: this.trialBoot,
      fallbackSnapshot: this.current,
      pendingTrial: this.pendingTrial,
      lastTrialResult: this.lastTrialResult,
      snapshots: this.snapshots,
      health: null,
      ...(this.options.deltaFormats ? { deltaFormats: this.options.deltaFormats } : {}),
    };
    await this.publish(DeviceChannel.State, state);
  }

  private publish(channel: DeviceChannel, message: object, retain = false): Promise<void> {
    return this.link.publish(channel, message, retain);
  }

  /** how often this device connected again after a failed attempt or a lost connection */
  get reconnects(): number {
    return this.link.reconnects;
  }

  /** reports that had to be sent again (no PUBACK before their connection closed or timed out) */
  get resentReports(): number {
    return this.link.resends;
  }

  /** DeviceLink.openRetrying (next URL, backoff, one attempt loop), then a state report. */
  async connectRetrying(): Promise<void> {
    await this.link.openRetrying();
    if (!this.link.isStopped) await this.publishState();
  }

  private async event(commandId: string, type: JobEventType, extra: Partial<JobEventMessage> = {}): Promise<void> {
    const event: JobEventMessage = {
      v: PROTOCOL_VERSION,
      commandId,
      eventId: randomUUID(),
      type,
      at: new Date().toISOString(),
      ...extra,
    } as JobEventMessage;
    this.hooks.onEvent?.(this.id, event);
    if (this.options.reconnect) this.reported.set(commandId, [...(this.reported.get(commandId) ?? []), event]);
    await this.publish(DeviceChannel.Events, event);
  }

  private async handle(payload: Buffer): Promise<void> {
    const parsed = parseCommand(payload);
    if (!parsed.ok) return;
    const command = parsed.value;
    if (command.type === CommandType.Install) this.installCommandIds.add(command.commandId);
    const previous = this.handled.get(command.commandId);
    if (previous && this.options.reconnect) {
      for (const event of this.reported.get(command.commandId) ?? []) await this.publish(DeviceChannel.Events, event);
      return;
    }
    if (previous) {
      await this.event(command.commandId, JobEventType.Accepted, { duplicate: true });
      return;
    }
    this.handled.set(command.commandId, JobEventType.Accepted);
    await this.event(command.commandId, JobEventType.Accepted);
    const outcome = await this.execute(command);
    this.handled.set(command.commandId, outcome);
  }

  private async execute(command: Command): Promise<JobEventType> {
    switch (command.type) {
      case CommandType.Install:
        return this.install(command as InstallCommand);
      case CommandType.Switch: {
        if (!this.snapshots.some((s) => s.id === command.snapshot)) {
          return this.fail(command.commandId, ErrorCode.SnapshotNotFound, `snapshot ${command.snapshot} is not held`);
        }
        return this.trial(command.commandId, command.snapshot, command.reboot.mode);
      }
      case CommandType.Commit: {
        this.snapshots.push({ ...factorySnapshot(), id: command.snapshot, origin: SnapshotOrigin.Committed });
        return this.trial(command.commandId, command.snapshot, command.reboot.mode);
      }
      case CommandType.Delete: {
        for (const id of command.snapshots) {
          if ([this.booted, this.current, this.pendingTrial?.snapshot].includes(id)) {
            return this.fail(command.commandId, ErrorCode.SnapshotInUse, `snapshot ${id} is in use`);
          }
        }
        for (const id of command.snapshots) {
          const index = this.snapshots.findIndex((s) => s.id === id);
          if (index >= 0) this.snapshots.splice(index, 1);
        }
        await this.publishState();
        await this.event(command.commandId, JobEventType.Completed);
        return JobEventType.Completed;
      }
      case CommandType.Reboot:
        await this.event(command.commandId, JobEventType.Rebooting);
        await this.reboot();
        await this.event(command.commandId, JobEventType.Completed);
        return JobEventType.Completed;
      case CommandType.Cancel:
        await this.event(command.commandId, JobEventType.Completed);
        return JobEventType.Completed;
    }
  }

  private async fail(commandId: string, code: ErrorCode, message: string): Promise<JobEventType> {
    await this.event(commandId, JobEventType.Failed, { error: { code, message } });
    return JobEventType.Failed;
  }

  private async install(command: InstallCommand): Promise<JobEventType> {
    const manifestResult = parseManifest(Buffer.from(command.artifact.manifest, 'base64'));
    if (!manifestResult.ok) return this.fail(command.commandId, ErrorCode.SignatureInvalid, manifestResult.message);
    const manifest = manifestResult.value;
    if (manifest.parent && !this.snapshots.some((s) => s.receivedUuid === manifest.parent!.snapshotUuid)) {
      return this.fail(
        command.commandId,
        ErrorCode.ParentMissing,
        `parent ${manifest.parent.release.name}@${manifest.parent.release.version} is not held`,
      );
    }
    if (this.outcome === SimOutcome.DownloadFail) {
      await this.event(command.commandId, JobEventType.Progress, {
        progress: { phase: JobPhase.Download, bytesDone: 0, bytesTotal: manifest.size },
      });
      return this.fail(command.commandId, ErrorCode.DownloadFailed, 'simulated: connection reset by peer');
    }
    if (this.options.realDownload) {
      const ok = await this.download(command.artifact.url, manifest.sha256);
      if (!ok)
        return this.fail(command.commandId, ErrorCode.Sha256Mismatch, 'downloaded bytes do not match the manifest');
    } else if (this.options.linkBytesPerSecond) {
      await sleep(Math.round((manifest.size / this.options.linkBytesPerSecond) * 1000));
    }
    await this.event(command.commandId, JobEventType.Progress, {
      progress: { phase: JobPhase.Receive, bytesDone: manifest.size, bytesTotal: manifest.size },
    });
    const snapshotId = command.snapshotId ?? `${manifest.release.name}-${manifest.release.version}`;
    if (!this.snapshots.some((s) => s.id === snapshotId)) {
      this.snapshots.push({
        id: snapshotId,
        uuid: randomUUID(),
        receivedUuid: manifest.snapshotUuid,
        parentUuid: null,
        readOnly: true,
        origin: SnapshotOrigin.Received,
        release: { name: manifest.release.name, version: manifest.release.version },
        createdAt: new Date().toISOString(),
      });
    }
    return this.trial(command.commandId, snapshotId, command.reboot.mode, manifest.size);
  }

  private async download(url: string, sha256: string): Promise<boolean> {
    const auth = Buffer.from(`${this.id}:${this.options.credential}`).toString('base64');
    const response = await fetch(url, { headers: { Authorization: `Basic ${auth}` } });
    if (!response.ok || !response.body) return false;
    const hash = createHash('sha256');
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest('hex') === sha256;
  }

  /** Requests a trial and plays the reboot(s) that follow, ending in the scripted outcome. */
  private async trial(commandId: string, snapshot: string, mode: RebootMode, bytes?: number): Promise<JobEventType> {
    this.pendingTrial = { snapshot, state: TrialState.Requested };
    await this.publishState();
    await this.event(commandId, JobEventType.Staged, { snapshot, bytesDownloaded: bytes });
    if (mode === RebootMode.Never) return JobEventType.Staged;
    await this.event(commandId, JobEventType.Rebooting, { snapshot });
    const fallback = this.current;
    switch (this.outcome) {
      case SimOutcome.Hang:
        await this.stop();
        return JobEventType.Rebooting;
      case SimOutcome.BootloaderFallback:
        this.pendingTrial = null;
        this.lastTrialResult = { snapshot, outcome: TrialOutcome.BootloaderFallback };
        await this.reboot();
        await this.event(commandId, JobEventType.RolledBack, {
          snapshot,
          rollback: { snapshot, restoredSnapshot: fallback, by: RollbackCause.Bootloader },
        });
        return JobEventType.RolledBack;
      case SimOutcome.HealthReject: {
        this.pendingTrial = { snapshot, state: TrialState.Trying };
        await this.reboot(snapshot, true);
        const outputTail = 'simulated: no route to host';
        await this.event(commandId, JobEventType.Rejected, {
          snapshot,
          error: { code: ErrorCode.HealthCheckFailed, message: 'required check network failed' },
        });
        this.pendingTrial = null;
        this.lastTrialResult = { snapshot, outcome: TrialOutcome.HealthRejected, check: 'network', outputTail };
        await this.reboot();
        await this.event(commandId, JobEventType.RolledBack, {
          snapshot,
          rollback: {
            snapshot,
            restoredSnapshot: fallback,
            by: RollbackCause.HealthCheck,
            check: 'network',
            outputTail,
          },
        });
        return JobEventType.RolledBack;
      }
      default: {
        this.pendingTrial = { snapshot, state: TrialState.Trying };
        await this.reboot(snapshot, true);
        this.pendingTrial = { snapshot, state: TrialState.Confirmed };
        this.lastTrialResult = null;
        await this.publishState();
        await this.event(commandId, JobEventType.Confirmed, { snapshot });
        // u-boot accepts the confirmed trial at the next boot; until then it is reported as confirmed.
        this.current = snapshot;
        return JobEventType.Confirmed;
      }
    }
  }

  /** Drops the connection, waits, and comes back booted into `snapshot` (default: the current one). */
  private async reboot(snapshot = this.current, trial = false): Promise<void> {
    this.rebooting = true;
    await this.link.drop();
    await sleep(this.options.rebootMs ?? 200);
    this.rebooting = false;
    if (this.link.isStopped) return;
    this.booted = snapshot;
    this.trialBoot = trial;
    this.seq = 0;
    await (this.options.reconnect ? this.connectRetrying() : this.connect());
  }
}
