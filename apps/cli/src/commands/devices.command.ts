import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ApiError, CliError } from '../cli-error';
import { CliContext } from '../cli-context';
import { BulkProvisionView, DeviceView, ProvisionedDeviceView } from '../api-types';
import { formatBytes } from '../releases/progress-bar';
import { formatKeyValues, formatTable } from '../table';
import { collect, listMax, positiveInt, shortTime } from './options';

const DEVICE_PAGE_SIZE = 500; // the server's maximum page (ListDevicesQueryDto)
const DEFAULT_LIST_LIMIT = 100;

const devicePath = (id: string) => `/api/v1/devices/${encodeURIComponent(id)}`;

interface ListOptions {
  tag?: string[];
  online?: boolean;
  offline?: boolean;
  release?: string;
  query?: string;
  status?: string;
  all?: boolean;
  limit?: number;
}

export function registerDevicesCommands(program: Command, context: CliContext): void {
  const devices = program.command('devices').description('list, show, tag, provision and decommission devices');

  devices
    .command('list')
    .description(`list devices, ordered by id (default the first ${DEFAULT_LIST_LIMIT}; --all follows every page)`)
    .option('--tag <tag>', 'only devices carrying this tag (repeatable: all must match)', collect)
    .option('--online', 'only devices connected now')
    .option('--offline', 'only devices not connected now')
    .option('--release <name@version>', 'only devices that booted this release')
    .option('--query <text>', 'device id contains this text (case-insensitive)')
    .option('--status <status>', 'active or decommissioned')
    .option('--all', 'every matching device (follows the pagination cursors)')
    .option('--limit <n>', `at most n devices (default ${DEFAULT_LIST_LIMIT})`, positiveInt('--limit'))
    .action(async (options: ListOptions, command: Command) => {
      if (options.online && options.offline) throw CliError.usage('--online and --offline exclude each other');
      const client = await context.client();
      const { items, truncated } = await client.collect<DeviceView>(
        '/api/v1/devices',
        {
          tag: options.tag,
          online: options.online ? true : options.offline ? false : undefined,
          release: options.release,
          q: options.query,
          status: options.status,
        },
        listMax(options, DEFAULT_LIST_LIMIT),
        DEVICE_PAGE_SIZE,
      );
      if (context.json(command)) return context.printJson(items);
      context.out(
        formatTable<DeviceView>(
          [
            { header: 'id', value: (d) => d.id },
            { header: 'status', value: (d) => d.status },
            { header: 'online', value: (d) => (d.online ? 'yes' : 'no') },
            { header: 'release', value: (d) => d.bootedRelease },
            { header: 'trial', value: (d) => (d.trialBoot ? 'yes' : '') },
            { header: 'tags', value: (d) => d.tags.join(',') },
            { header: 'last seen', value: (d) => shortTime(d.lastSeenAt) },
          ],
          items,
        ),
      );
      if (truncated) context.err(`(showing the first ${items.length}; more match: use --all or --limit <n>)`);
    });

  devices
    .command('show <id>')
    .description('one device: state, snapshots, last trial and health')
    .action(async (id: string, _options: unknown, command: Command) => {
      const device = await (await context.client()).get<DeviceView>(devicePath(id));
      if (context.json(command)) return context.printJson(device);
      printDevice(context, device);
    });

  devices
    .command('tag <id>')
    .description('add and/or remove tags of a device')
    .option('--add <tag>', 'tag to add (repeatable)', collect)
    .option('--remove <tag>', 'tag to remove (repeatable)', collect)
    .action(async (id: string, options: { add?: string[]; remove?: string[] }, command: Command) => {
      const add = options.add ?? [];
      const remove = options.remove ?? [];
      if (add.length === 0 && remove.length === 0) throw CliError.usage('give --add <tag> and/or --remove <tag>');
      const both = add.find((tag) => remove.includes(tag));
      if (both) throw CliError.usage(`tag ${both} is both added and removed`);
      const client = await context.client();
      // The API replaces the whole tag list (PATCH /devices/:id); a concurrent edit between this read and
      // the write would be lost, which is acceptable for an interactive command.
      const current = await client.get<DeviceView>(devicePath(id));
      const tags = [
        ...current.tags.filter((tag) => !remove.includes(tag)),
        ...add.filter((tag) => !current.tags.includes(tag)),
      ];
      const updated = await client.patch<DeviceView>(devicePath(id), { tags });
      if (context.json(command)) return context.printJson(updated);
      context.out(`${updated.id}: tags ${updated.tags.join(',') || '(none)'}`);
    });

  devices
    .command('provision [id]')
    .description('provision one device (prints its credential once) or many from --file devices.csv|json')
    .option('--tag <tag>', 'tag of the new device (repeatable)', collect)
    .option(
      '--file <path>',
      'CSV (header id,tags,credential; tags separated by ";") or JSON ([{id,tags,credential}] or {devices:[...]})',
    )
    .action(async (id: string | undefined, options: { tag?: string[]; file?: string }, command: Command) => {
      if (options.file && id) throw CliError.usage('give either a device id or --file, not both');
      if (options.file && options.tag)
        throw CliError.usage('--tag applies to one device; put tags in the file for --file');
      if (!options.file && !id) throw CliError.usage('give the device id, or --file <devices.csv|json>');
      const client = await context.client();
      if (id) {
        const result = await client.post<ProvisionedDeviceView>('/api/v1/devices', { id, tags: options.tag ?? [] });
        if (context.json(command)) return context.printJson(result);
        context.err(
          `provisioned ${result.device.id}; its credential is shown only now: put it on the device (agent config)`,
        );
        context.out(`${result.device.id} ${result.credential}`);
        return;
      }
      const result = await provisionFromFile(context, options.file!);
      if (context.json(command)) return context.printJson(result);
      const generated = result.devices.filter((device) => device.credential);
      context.err(
        `provisioned ${result.created} device${result.created === 1 ? '' : 's'}${generated.length > 0 ? '; generated credentials are shown only now' : ''}`,
      );
      if (generated.length > 0) {
        context.out(
          formatTable(
            [
              { header: 'id', value: (d: { id: string }) => d.id },
              { header: 'credential', value: (d: { credential?: string }) => d.credential },
            ],
            generated,
          ),
        );
      }
    });

  devices
    .command('decommission <id>')
    .description('revoke the credential, disconnect the device and refuse it from now on (the record stays)')
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .action(async (id: string, options: { reason: string }, command: Command) => {
      const device = await (
        await context.client()
      ).post<DeviceView>(`${devicePath(id)}/decommission`, { reason: options.reason });
      if (context.json(command)) return context.printJson(device);
      context.out(`${device.id}: decommissioned (${device.decommissionReason ?? options.reason})`);
    });
}

async function provisionFromFile(context: CliContext, path: string): Promise<BulkProvisionView> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw CliError.usage(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const client = await context.client();
  try {
    if (extname(path).toLowerCase() === '.csv')
      return await client.sendText<BulkProvisionView>('POST', '/api/v1/devices/bulk', 'text/csv', text);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw CliError.usage(`${path} is not valid JSON (${(error as Error).message}); name CSV files *.csv`);
    }
    return await client.post<BulkProvisionView>(
      '/api/v1/devices/bulk',
      Array.isArray(value) ? { devices: value } : value,
    );
  } catch (error) {
    // all or nothing: the server lists every bad row; show them before the summary error
    const rows =
      error instanceof ApiError
        ? (error.details as { rows?: { line: number; id?: string; reason: string }[] } | undefined)?.rows
        : undefined;
    if (rows) for (const row of rows) context.err(`  ${path}:${row.line}${row.id ? ` ${row.id}` : ''}: ${row.reason}`);
    throw error;
  }
}

function printDevice(context: CliContext, device: DeviceView): void {
  context.out(
    formatKeyValues([
      ['id', device.id],
      ['status', device.status + (device.decommissionReason ? ` (${device.decommissionReason})` : '')],
      ['online', device.online ? 'yes' : 'no'],
      ['last seen', shortTime(device.lastSeenAt)],
      ['agent', device.agentVersion],
      ['tags', device.tags.join(',')],
      [
        'booted',
        device.bootedSnapshot
          ? `${device.bootedSnapshot}${device.bootedRelease ? ` (${device.bootedRelease})` : ''}`
          : null,
      ],
      ['trial boot', device.trialBoot === null ? null : device.trialBoot ? 'yes (unconfirmed)' : 'no'],
      ['fallback', device.fallbackSnapshot],
      ['pending trial', device.pendingTrial ? `${device.pendingTrial.snapshot} (${device.pendingTrial.state})` : null],
      [
        'last trial',
        device.lastTrialResult
          ? `${device.lastTrialResult.snapshot}: ${device.lastTrialResult.outcome}${device.lastTrialResult.check ? ` (check ${device.lastTrialResult.check})` : ''}`
          : null,
      ],
      ['health', device.health ? `${device.health.status} at ${shortTime(device.health.checkedAt)}` : null],
      ['free space', device.freeBytes === null ? null : formatBytes(device.freeBytes)],
      ['provisioned', `${shortTime(device.createdAt)} by ${device.provisionedBy}`],
    ]),
  );
  if (device.snapshots.length > 0) {
    context.out('');
    context.out(
      formatTable(
        [
          {
            header: 'snapshot',
            value: (s: DeviceView['snapshots'][number]) => s.id + (s.id === device.bootedSnapshot ? ' *' : ''),
          },
          { header: 'origin', value: (s) => s.origin },
          { header: 'release', value: (s) => (s.release ? `${s.release.name}@${s.release.version}` : null) },
          { header: 'read-only', value: (s) => (s.readOnly ? 'yes' : 'no') },
          { header: 'received uuid', value: (s) => s.receivedUuid },
          { header: 'created', value: (s) => shortTime(s.createdAt) },
        ],
        device.snapshots,
      ),
    );
  }
  if (device.health && device.health.checks.length > 0) {
    context.out('');
    context.out(
      formatTable(
        [
          { header: 'check', value: (c: { name: string }) => c.name },
          { header: 'kind', value: (c: { kind: string }) => c.kind },
          { header: 'passed', value: (c: { passed: boolean }) => (c.passed ? 'yes' : 'NO') },
        ],
        device.health.checks,
      ),
    );
  }
}
