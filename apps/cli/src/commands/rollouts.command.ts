import { Command } from 'commander';
import type { Schemas } from '@cowroot/api-client';
import { QueryOf } from '../api-client';
import { CliError } from '../cli-error';
import { CliContext } from '../cli-context';
import { formatTable } from '../table';
import { parseAbortRule } from '../rollouts/abort-rule';
import { parseDuration } from '../rollouts/duration';
import { FINAL_ROLLOUT_STATUSES, countColumns, renderRollout, RolloutStatusView } from '../rollouts/rollout-view';
import { describeSelector, parseSelector } from '../rollouts/target-selector';
import { parsePercent, parseWave, validateWaves, waveRequest } from '../rollouts/wave-spec';
import { collect, listMax, positiveInt, releaseRef, shortTime } from './options';

const ROLLOUT_PAGE_SIZE = 200;
const EXECUTION_PAGE_SIZE = 1000;
const DEFAULT_WAVE_TIMEOUT = '1h';
const REBOOT_MODES = ['now', 'window', 'never'];

interface CreateOptions {
  release: string;
  name?: string;
  tag?: string[];
  device?: string[];
  filter?: string[];
  allDevices?: boolean;
  wave: string[];
  success?: string;
  timeout: string;
  soak?: string;
  abort?: string[];
  rate?: number;
  ordered?: boolean;
  continuous?: boolean;
  reboot?: string;
  reason?: string;
}

type ExecutionRow = Schemas['ExecutionDto'];
type TimelineEntry = Schemas['TimelineEntryDto'];
const byId = (id: string) => ({ params: { path: { id } } });

/** The POST /api/v1/rollouts body (CreateRolloutDto) from the command line; every check is local first. */
export function createRolloutBody(options: CreateOptions): Schemas['CreateRolloutDto'] {
  const release = releaseRef(options.release);
  const selector = parseSelector(options);
  const defaults = {
    successPercent: options.success !== undefined ? parsePercent(options.success, '--success') : undefined,
    timeoutSeconds: parseDuration(options.timeout, '--timeout'),
    soakSeconds: options.soak !== undefined ? parseDuration(options.soak, '--soak') : undefined,
  };
  if (defaults.timeoutSeconds < 1) throw CliError.usage('--timeout must be longer than 0 s');
  const waves = (options.wave ?? []).map((text) => parseWave(text, defaults));
  validateWaves(waves);
  if (options.reboot !== undefined && !REBOOT_MODES.includes(options.reboot))
    throw CliError.usage(`--reboot must be one of ${REBOOT_MODES.join(', ')}`);
  return {
    name: options.name ?? `${release.name}@${release.version} to ${describeSelector(selector)}`.slice(0, 200),
    release,
    selector,
    waves: waves.map((wave) => waveRequest(wave, defaults.timeoutSeconds)),
    abortRules: (options.abort ?? []).map(parseAbortRule),
    ...(options.rate !== undefined ? { dispatchPerMinute: options.rate } : {}),
    randomize: !options.ordered,
    continuous: Boolean(options.continuous),
    ...(options.reboot ? { rebootMode: options.reboot as Schemas['CreateRolloutDto']['rebootMode'] } : {}),
    ...(options.reason ? { reason: options.reason } : {}),
  };
}

export function registerRolloutsCommands(program: Command, context: CliContext): void {
  const rollouts = program.command('rollouts').description('create, watch and steer staged rollouts');

  rollouts
    .command('create')
    .description('start a staged rollout of a release to the selected devices, wave by wave')
    .requiredOption('--release <name@version>', 'the release to roll out')
    .option('--name <text>', 'a name for people (default: "<release> to <target>")')
    .option('--tag <tag>', 'target devices carrying this tag (repeatable: all must match)', collect)
    .option('--device <id>', 'target this device (repeatable)', collect)
    .option(
      '--filter <key=value>',
      'target by release=<name@version> booted, online=true|false, id-prefix=<prefix> (repeatable)',
      collect,
    )
    .option('--all-devices', 'target every active device')
    .option(
      '--wave <spec>',
      'cumulative wave: 1 | 5% | 100%, options ",success=95%,timeout=30m,soak=1h,approval" (repeatable, in order)',
      collect,
    )
    .option('--success <percent>', 'default share of a wave that must CONFIRM (server default 100%)')
    .option('--timeout <duration>', 'default time a device has from dispatch to confirm', DEFAULT_WAVE_TIMEOUT)
    .option('--soak <duration>', 'default wait after a wave succeeded before the next starts (server default 0)')
    .option(
      '--abort <rule>',
      'abort rule <kind>:<threshold>%[:min=<n>][:pause|revert], kinds download, health, fallback, timeout, any (repeatable)',
      collect,
    )
    .option('--rate <devices-per-minute>', 'dispatch at most this many devices per minute', positiveInt('--rate'))
    .option('--ordered', 'dispatch in device id order instead of random order')
    .option('--continuous', 'devices that match the target later (new, re-tagged) join the last wave')
    .option('--reboot <mode>', `when devices reboot into the trial: ${REBOOT_MODES.join(', ')} (server default now)`)
    .option('--reason <text>', 'recorded in the audit log')
    .action(async (options: CreateOptions, command: Command) => {
      const body = createRolloutBody(options);
      const client = await context.client();
      const rollout = await client.call(client.api.POST('/api/v1/rollouts', { body }));
      if (context.json(command)) return context.printJson(rollout);
      context.out(renderRollout(rollout));
      context.err(`follow it with: cowroot rollouts status ${rollout.id} --watch`);
    });

  rollouts
    .command('list')
    .description('rollouts, newest first')
    .option('--status <status>', 'running, paused, completed, canceled or aborted')
    .option('--all', 'every rollout (follows the pagination cursors)')
    .option('--limit <n>', 'at most n rollouts (default 50)', positiveInt('--limit'))
    .action(async (options: { status?: string; all?: boolean; limit?: number }, command: Command) => {
      const client = await context.client();
      // the status is checked by the server (400 with the allowed values)
      const status = options.status as QueryOf<'/api/v1/rollouts'>['status'];
      const { items, truncated } = await client.collect(
        (page) => client.call(client.api.GET('/api/v1/rollouts', { params: { query: { status, ...page } } })),
        listMax(options, 50),
        ROLLOUT_PAGE_SIZE,
      );
      if (context.json(command)) return context.printJson(items);
      context.out(
        formatTable<RolloutStatusView>(
          [
            { header: 'id', value: (r) => r.id },
            { header: 'name', value: (r) => r.name },
            { header: 'release', value: (r) => `${r.release.name}@${r.release.version}` },
            { header: 'status', value: (r) => r.status },
            { header: 'wave', value: (r) => `${Math.min(r.currentWave + 1, r.waves.length)}/${r.waves.length}` },
            { header: 'devices', value: (r) => r.total, align: 'right' },
            { header: 'confirmed', value: (r) => countColumns(r.counts).confirmed, align: 'right' },
            { header: 'failed', value: (r) => countColumns(r.counts).failed, align: 'right' },
            { header: 'created', value: (r) => shortTime(r.createdAt) },
          ],
          items,
        ),
      );
      if (truncated) context.err(`(showing the first ${items.length}; more exist: use --all or --limit <n>)`);
    });

  rollouts
    .command('status <id>')
    .description(
      'waves and device counts of a rollout; --watch redraws until it completes or is canceled (Ctrl-C to stop)',
    )
    .option('--watch', 'keep redrawing')
    .option('--interval <duration>', 'redraw interval with --watch', '2s')
    .action(async (id: string, options: { watch?: boolean; interval: string }, command: Command) => {
      const client = await context.client();
      const json = context.json(command);
      const intervalMs = Math.max(1, parseDuration(options.interval, '--interval')) * 1000;
      const tty = Boolean(context.io.stdout.isTTY);
      let previous = '';
      for (;;) {
        const rollout = await client.call(client.api.GET('/api/v1/rollouts/{id}', byId(id)));
        const state = JSON.stringify(rollout);
        const frame = json ? state : renderRollout(rollout);
        const finished = FINAL_ROLLOUT_STATUSES.includes(rollout.status);
        if (!options.watch) {
          if (json) context.printJson(rollout);
          else context.out(frame);
          return;
        }
        // on a terminal: redraw in place; in a log or pipe: a new frame only when the rollout changed (not
        // when only a countdown in the notes moved)
        if (tty && !json) {
          context.io.stdout.write(
            `\x1b[H\x1b[2J${frame}\n\n(every ${options.interval}; Ctrl-C to stop)  ${new Date().toISOString()}\n`,
          );
        } else if (state !== previous) {
          context.out(json ? frame : `${previous ? '\n' : ''}${new Date().toISOString()}\n${frame}`);
        }
        previous = state;
        if (finished || context.interrupted) return;
        await context.sleep(intervalMs);
        if (context.interrupted) return;
      }
    });

  rollouts
    .command('executions <id>')
    .description('per-device executions of a rollout (state, artifact, failure reason)')
    .option('--state <state>', 'only devices in this state (e.g. failed, confirmed, rejected-by-health-check)')
    .option('--wave <n>', 'only this wave (1-based)', positiveInt('--wave'))
    .option('--all', 'every execution (follows the pagination cursors)')
    .option('--limit <n>', 'at most n executions (default 100)', positiveInt('--limit'))
    .action(
      async (
        id: string,
        options: { state?: string; wave?: number; all?: boolean; limit?: number },
        command: Command,
      ) => {
        const client = await context.client();
        const filter: QueryOf<'/api/v1/rollouts/{id}/executions'> = {
          // checked by the server (400 with the allowed values)
          state: options.state as QueryOf<'/api/v1/rollouts/{id}/executions'>['state'],
          wave: options.wave === undefined ? undefined : options.wave - 1,
        };
        const { items, truncated } = await client.collect(
          (page) =>
            client.call(
              client.api.GET('/api/v1/rollouts/{id}/executions', {
                params: { path: { id }, query: { ...filter, ...page } },
              }),
            ),
          listMax(options, 100),
          EXECUTION_PAGE_SIZE,
        );
        if (context.json(command)) return context.printJson(items);
        context.out(
          formatTable<ExecutionRow>(
            [
              { header: 'device', value: (e) => e.deviceId },
              { header: 'wave', value: (e) => e.wave + 1, align: 'right' },
              { header: 'state', value: (e) => e.state },
              { header: 'attempt', value: (e) => e.attempt, align: 'right' },
              {
                header: 'artifact',
                value: (e) => (e.artifact?.file ? `${e.artifact.file} (${e.artifact.kind})` : null),
              },
              { header: 'from', value: (e) => e.fromSnapshot },
              { header: 'dispatched', value: (e) => shortTime(e.dispatchedAt) },
              { header: 'reason', value: (e) => e.failureReason },
            ],
            items,
          ),
        );
        if (truncated) context.err(`(showing the first ${items.length}; more exist: use --all or --limit <n>)`);
      },
    );

  for (const [action, description] of [
    ['pause', 'stop dispatching (devices in flight finish)'],
    ['resume', 'continue a paused rollout (a wave that missed its criterion counts as accepted)'],
    ['cancel', 'stop for good: devices not dispatched yet are canceled'],
    ['approve', 'approve the next wave that waits for a manual approval'],
    ['retry-failed', 'give failed, rejected, rolled-back and timed-out devices (only) another attempt'],
  ] as const) {
    rollouts
      .command(`${action} <id>`)
      .description(description)
      .option('--reason <text>', 'recorded in the audit log')
      .action(async (id: string, options: { reason?: string }, command: Command) => {
        const client = await context.client();
        const rollout = await client.call(
          client.api.POST(`/api/v1/rollouts/{id}/${action}`, {
            ...byId(id),
            body: options.reason ? { reason: options.reason } : {},
          }),
        );
        if (context.json(command)) return context.printJson(rollout);
        context.out(
          `rollout ${rollout.id}: ${rollout.status}${rollout.statusReason ? ` (${rollout.statusReason})` : ''}`,
        );
      });
  }

  rollouts
    .command('timeline <id>')
    .description('audit timeline of the rollout and its devices, oldest first')
    .option('--limit <n>', 'at most n entries (default 1000)', positiveInt('--limit'))
    .action(async (id: string, options: { limit?: number }, command: Command) => {
      const client = await context.client();
      const entries = await client.call(
        client.api.GET('/api/v1/rollouts/{id}/timeline', {
          params: { path: { id }, query: { limit: options.limit } },
        }),
      );
      if (context.json(command)) return context.printJson(entries);
      context.out(
        formatTable<TimelineEntry>(
          [
            { header: 'at', value: (e) => shortTime(e.at) },
            {
              header: 'actor',
              // the API nests the actor ({ type, id, name }); reading flat actorType showed "-" for everyone
              value: (e) => `${e.actor.type}:${e.actor.name || e.actor.id}`,
            },
            { header: 'action', value: (e) => e.action },
            { header: 'subject', value: (e) => `${e.subjectType}:${e.subjectId}` },
            { header: 'reason', value: (e) => e.reason },
          ],
          entries,
        ),
      );
    });
}
