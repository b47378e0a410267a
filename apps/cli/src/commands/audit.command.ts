import { Command } from 'commander';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { AuditEntryView } from '../api-types';
import { CliError } from '../cli-error';
import { CliContext, OutputStream } from '../cli-context';
import { Query } from '../api-client';
import { formatBytes } from '../releases/progress-bar';
import { formatTable } from '../table';
import { listMax, positiveInt, shortTime } from './options';

const AUDIT_PAGE_SIZE = 1000; // the server's maximum (AuditQueryDto)
const DEFAULT_QUERY_LIMIT = 100;

interface FilterOptions {
  actorType?: string;
  actor?: string;
  action?: string;
  subjectType?: string;
  subject?: string;
  from?: string;
  to?: string;
}

function withFilters(command: Command): Command {
  return command
    .option('--actor-type <type>', 'operator, device or system')
    .option('--actor <id>', 'actor id (API token id, device id, …)')
    .option('--action <action>', 'exact action, or a prefix ending in * (e.g. "device.*")')
    .option('--subject-type <type>', 'e.g. device, release, rollout')
    .option('--subject <id>', 'subject id, e.g. a device id or name/version of a release')
    .option('--from <time>', 'entries at or after this ISO 8601 time')
    .option('--to <time>', 'entries before this ISO 8601 time');
}

function filterQuery(options: FilterOptions): Query {
  for (const [flag, value] of [
    ['--from', options.from],
    ['--to', options.to],
  ] as const) {
    if (value !== undefined && Number.isNaN(Date.parse(value)))
      throw CliError.usage(`${flag} must be an ISO 8601 time like 2026-11-26T00:00:00Z, got ${JSON.stringify(value)}`);
  }
  return {
    actorType: options.actorType,
    actorId: options.actor,
    action: options.action,
    subjectType: options.subjectType,
    subjectId: options.subject,
    from: options.from,
    to: options.to,
  };
}

export function registerAuditCommands(program: Command, context: CliContext): void {
  const audit = program.command('audit').description('query and export the append-only audit log');

  withFilters(audit.command('query'))
    .description(`audit entries matching the filters (default the first ${DEFAULT_QUERY_LIMIT})`)
    .option('--all', 'every matching entry (follows the pagination cursors)')
    .option('--limit <n>', `at most n entries (default ${DEFAULT_QUERY_LIMIT})`, positiveInt('--limit'))
    .action(async (options: FilterOptions & { all?: boolean; limit?: number }, command: Command) => {
      const client = await context.client();
      const { items, truncated } = await client.collect<AuditEntryView>(
        '/api/v1/audit',
        filterQuery(options),
        listMax(options, DEFAULT_QUERY_LIMIT),
        AUDIT_PAGE_SIZE,
      );
      if (context.json(command)) return context.printJson(items);
      context.out(
        formatTable<AuditEntryView>(
          [
            { header: 'at', value: (e) => shortTime(e.at) },
            { header: 'actor', value: (e) => `${e.actorType}:${e.actorName}` },
            { header: 'action', value: (e) => e.action },
            { header: 'subject', value: (e) => `${e.subjectType}:${e.subjectId}` },
            { header: 'reason', value: (e) => e.reason },
            { header: 'correlation id', value: (e) => e.correlationId },
          ],
          items,
        ),
      );
      if (truncated) context.err(`(showing the first ${items.length}; more match: use --all or --limit <n>)`);
    });

  withFilters(audit.command('export'))
    .description('stream the whole filtered log, oldest first, as CSV or a JSON array, to a file or stdout')
    .option('--format <format>', 'csv or json', 'json')
    .option('--out <file>', 'write here (replaced only once the export is complete) instead of stdout')
    .action(async (options: FilterOptions & { format: string; out?: string }) => {
      if (options.format !== 'csv' && options.format !== 'json')
        throw CliError.usage(`--format must be csv or json, got ${JSON.stringify(options.format)}`);
      const query = { ...filterQuery(options), format: options.format };
      const response = await (await context.client()).openStream('/api/v1/audit/export', query);
      if (!response.body) throw new CliError('the server sent no export body');
      if (!options.out) {
        await copyTo(response.body, context.io.stdout);
        return;
      }
      // a cut-off export must never look like a complete one: write aside, rename at the end
      const partial = `${options.out}.partial`;
      const file = createWriteStream(partial, { mode: 0o600 });
      try {
        const bytes = await copyTo(response.body, file);
        file.end();
        await once(file, 'close');
        await rename(partial, options.out);
        context.err(`exported ${formatBytes(bytes)} of audit ${options.format.toUpperCase()} to ${options.out}`);
      } catch (error) {
        file.destroy();
        await rm(partial, { force: true });
        throw error instanceof CliError ? error : new CliError(`audit export failed: ${(error as Error).message}`);
      }
    });
}

/** Copies the body with backpressure; never buffers the whole export. Returns the byte count. */
async function copyTo(body: ReadableStream<Uint8Array>, destination: OutputStream): Promise<number> {
  let bytes = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    if (!destination.write(chunk)) await once(destination, 'drain');
  }
  return bytes;
}
