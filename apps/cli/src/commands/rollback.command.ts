import type { Schemas } from '@cowroot/api-client';
import { Command } from 'commander';
import { CliError } from '../cli-error';
import { CliContext } from '../cli-context';
import { ExitCode } from '../exit-codes';
import { parseDuration } from '../rollouts/duration';
import { formatTable } from '../table';

type RollbackView = Schemas['RollbackDto'];

/** Device states after which a rollback's outcome for that device is known. */
const FAILED = ['rejected-by-health-check', 'rolled-back-by-bootloader', 'failed', 'timed-out', 'canceled'];
const SETTLED = ['skipped', 'confirmed', ...FAILED];

interface RollbackOptions {
  device?: string;
  tag?: string;
  rollout?: string;
  snapshot?: string;
  reason?: string;
  wait?: boolean;
  waitTimeout: string;
}

export function registerRollbackCommand(program: Command, context: CliContext): void {
  program
    .command('rollback')
    .description(
      "switch one device, a tag's devices or a rollout's devices to a snapshot they already hold (no download)",
    )
    .option('--device <id>', 'this device')
    .option('--tag <tag>', 'every device with this tag')
    .option('--rollout <id>', "the rollout's devices that confirmed its release go back to where they came from")
    .option(
      '--snapshot <id>',
      'snapshot to switch to (default: where each device came from in the rollout, else its newest other read-only snapshot)',
    )
    .option('--reason <text>', 'recorded in the audit log')
    .option('--wait', 'wait until every device reported its outcome; exit 1 when any failed or did not report in time')
    .option('--wait-timeout <duration>', 'give up waiting after this long', '15m')
    .action(async (options: RollbackOptions, command: Command) => {
      const targets = [
        options.device && { deviceId: options.device },
        options.tag && { tag: options.tag },
        options.rollout && { rolloutId: options.rollout },
      ].filter(Boolean);
      if (targets.length !== 1)
        throw CliError.usage('give exactly one of --device <id>, --tag <tag> or --rollout <id>');
      const deadline = Date.now() + parseDuration(options.waitTimeout, '--wait-timeout') * 1000;
      const client = await context.client();
      let rollback: RollbackView = await client.call(
        client.api.POST('/api/v1/rollbacks', {
          body: {
            ...targets[0],
            ...(options.snapshot ? { snapshot: options.snapshot } : {}),
            ...(options.reason ? { reason: options.reason } : {}),
          },
        }),
      );
      const pending = () => rollback.devices.filter((device) => !SETTLED.includes(device.state));
      if (options.wait) {
        while (pending().length > 0 && Date.now() < deadline && !context.interrupted) {
          await context.sleep(2000);
          rollback = await client.call(
            client.api.GET('/api/v1/rollbacks/{id}', { params: { path: { id: rollback.id } } }),
          );
        }
      }
      if (context.json(command)) context.printJson(rollback);
      else {
        context.out(
          `rollback ${rollback.id}: ${rollback.target.type} ${rollback.target.value}${rollback.snapshot ? ` to ${rollback.snapshot}` : ''}`,
        );
        context.out(
          rollback.devices.length === 0
            ? '(no device matched)'
            : formatTable(
                [
                  { header: 'device', value: (d: RollbackView['devices'][number]) => d.deviceId },
                  { header: 'snapshot', value: (d) => d.snapshot },
                  { header: 'state', value: (d) => d.state },
                  { header: 'detail', value: (d) => d.detail },
                ],
                rollback.devices,
              ),
        );
      }
      if (!options.wait) return;
      if (pending().length > 0)
        throw new CliError(
          `${pending().length} device(s) have not reported an outcome within --wait-timeout ${options.waitTimeout}`,
          ExitCode.Failure,
        );
      // skipped = nothing sent (already running it, or the snapshot is not on the device): said, not failed
      const skipped = rollback.devices.filter((device) => device.state === 'skipped');
      if (skipped.length > 0)
        context.err(`skipped: ${skipped.map((d) => `${d.deviceId} (${d.detail ?? 'nothing sent'})`).join(', ')}`);
      const failed = rollback.devices.filter((device) => FAILED.includes(device.state));
      if (failed.length > 0)
        throw new CliError(
          `${failed.length} device(s) did not switch back: ${failed.map((d) => `${d.deviceId} ${d.state}`).join(', ')}`,
          ExitCode.Failure,
        );
    });
}
