import { ErrorCode, HealthReport, HealthStatus, JobEventType } from '@cowroot/protocol';
import { AgentConfig } from '../config/agent-config';
import { DeviceCore } from '../device-core';
import { JobEvents } from '../events/job-events';
import { runTrialHealthChecks } from '../health/trial-health-check';
import { CommandJournal } from '../journal/command-journal';
import { AgentLogger } from '../logger';
import { Rebooter } from '../reboot/rebooter';
import { BootVerdict, bootVerdict } from './boot-verdict';

export interface BootHandlerDeps {
  config: AgentConfig;
  core: DeviceCore;
  journal: CommandJournal;
  events: JobEvents;
  reboots: Rebooter;
  logger: AgentLogger;
  /** whether the server answered over MQTT in time, counted from agent start */
  serverReachable: () => Promise<boolean>;
  /** the health report for the state (docs/protocol.md §5.1) */
  setHealth(report: HealthReport): void;
  publishState(): Promise<void>;
}

/** Reads the facts of this boot, asks bootVerdict what they mean, and carries the verdict out. */
export class BootHandler {
  constructor(private readonly deps: BootHandlerDeps) {}

  async handle(): Promise<void> {
    const { switcher } = this.deps.core;
    const env = await switcher.readEnv();
    const status = await switcher.status();
    const verdict = bootVerdict({
      boot: switcher.boot,
      env,
      trial: this.deps.journal.trial,
      lastTrialResult: status.lastTrialResult,
    });
    await this.apply(verdict);
  }

  private async apply(verdict: BootVerdict): Promise<void> {
    const { journal, events, logger } = this.deps;
    switch (verdict.kind) {
      case 'judge-trial':
        return this.judgeTrial(verdict.snapshot, verdict.commandId);
      case 'reboot-rejected':
        logger.warn('trial already rejected in this boot; rebooting into the fallback', {
          commandId: verdict.commandId,
        });
        return this.deps.reboots.rebootNow(verdict.commandId);
      case 'already-confirmed':
        logger.info('trial already confirmed in this boot', { snapshot: verdict.snapshot });
        return;
      case 'unmatched-trial-boot':
        logger.warn('trial boot without a matching trial in the env; no verdict', {
          booted: verdict.booted,
          envTrial: verdict.envTrial,
          envState: verdict.envState,
        });
        return;
      case 'trial-accepted':
        logger.info('trial accepted by the bootloader', { commandId: verdict.commandId, snapshot: verdict.snapshot });
        await journal.setTrial(null);
        return;
      case 'rolled-back': {
        const { commandId, snapshot, restoredSnapshot, by, check, outputTail, error } = verdict;
        await events.emit(commandId, JobEventType.RolledBack, {
          snapshot,
          rollback: {
            snapshot,
            restoredSnapshot,
            by,
            ...(check ? { check } : {}),
            ...(outputTail ? { outputTail } : {}),
          },
          ...(error ? { error } : {}),
        });
        await journal.setTrial(null);
        return;
      }
      case 'nothing':
        return;
      default:
        throw new Error(`unhandled boot verdict ${JSON.stringify(verdict satisfies never as unknown)}`);
    }
  }

  /** The trial boot (docs/agent.md §5): health checks, then confirm or reject-and-reboot. */
  private async judgeTrial(snapshot: string, commandId: string | null): Promise<void> {
    const { config, core, journal, events, logger } = this.deps;
    const trial = commandId && journal.trial?.commandId === commandId ? journal.trial : null;
    this.deps.setHealth({ status: HealthStatus.Pending, checkedAt: new Date().toISOString(), checks: [] });
    await this.deps.publishState();
    const { report, failed } = await runTrialHealthChecks({
      store: core.store,
      expectedSnapshot: snapshot,
      // bootVerdict judged this boot a trial only when the env's trial is the booted snapshot
      envTrial: snapshot,
      rootfsPath: config.health.rootfsPath,
      requiredDir: config.health.requiredDir,
      wantedDir: config.health.wantedDir,
      checkTimeoutMs: config.health.checkTimeoutMs,
      serverReachable: this.deps.serverReachable(),
      mqttConfirmTimeoutMs: config.health.mqttConfirmTimeoutMs,
    });
    this.deps.setHealth(report);
    for (const check of report.checks) {
      logger.info(`health check ${check.name}: ${check.passed ? 'passed' : 'FAILED'}`, {
        commandId: trial?.commandId,
        kind: check.kind,
        durationMs: check.durationMs,
        ...(check.passed ? {} : { outputTail: check.outputTail?.slice(-512) }),
      });
    }
    if (!failed) {
      await core.switcher.confirm();
      if (trial) {
        await journal.setTrial({ ...trial, verdict: 'confirmed' });
        await events.emit(trial.commandId, JobEventType.Confirmed, { snapshot });
      }
      await this.deps.publishState();
      return;
    }
    await core.switcher.reject({ check: failed.name, outputTail: failed.outputTail });
    if (trial) {
      await journal.setTrial({ ...trial, verdict: 'rejected', check: failed.name, outputTail: failed.outputTail });
      await events.emit(trial.commandId, JobEventType.Rejected, {
        snapshot,
        error: {
          code: ErrorCode.HealthCheckFailed,
          message: `health check ${failed.name} failed: ${(failed.outputTail ?? '').slice(-1024)}`,
        },
      });
    }
    await this.deps.publishState();
    if (trial) await this.deps.reboots.rebootNow(trial.commandId);
    else await this.deps.reboots.rebootIntoFallback();
  }
}
