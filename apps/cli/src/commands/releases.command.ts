import { Command } from 'commander';
import type { Schemas } from '@cowroot/api-client';
import { CliContext } from '../cli-context';
import { formatBytes } from '../releases/progress-bar';
import { ReleasePublisher } from '../releases/release-publisher';
import { formatKeyValues, formatTable } from '../table';
import { byteSize, listMax, positiveInt, releaseRef, shortTime } from './options';

type ReleaseView = Schemas['ReleaseDto'];
type ArtifactView = Schemas['ArtifactDto'];

const RELEASE_PAGE_SIZE = 200; // the server's maximum (ListReleasesQueryDto)
const DEFAULT_LIST_LIMIT = 50;

export function registerReleasesCommands(program: Command, context: CliContext): void {
  const releases = program.command('releases').description('list, show and publish rootfs releases');

  releases
    .command('list')
    .description(`releases, newest first (default the first ${DEFAULT_LIST_LIMIT})`)
    .option('--name <name>', 'only releases with this name')
    .option('--all', 'every release (follows the pagination cursors)')
    .option('--limit <n>', `at most n releases (default ${DEFAULT_LIST_LIMIT})`, positiveInt('--limit'))
    .action(async (options: { name?: string; all?: boolean; limit?: number }, command: Command) => {
      const client = await context.client();
      const { items, truncated } = await client.collect(
        (page) =>
          client.call(client.api.GET('/api/v1/releases', { params: { query: { name: options.name, ...page } } })),
        listMax(options, DEFAULT_LIST_LIMIT),
        RELEASE_PAGE_SIZE,
      );
      if (context.json(command)) return context.printJson(items);
      context.out(
        formatTable<ReleaseView>(
          [
            { header: 'name', value: (r) => r.name },
            { header: 'version', value: (r) => r.version },
            { header: 'snapshot uuid', value: (r) => r.snapshotUuid ?? '(no artifact yet)' },
            { header: 'created', value: (r) => shortTime(r.createdAt) },
            { header: 'by', value: (r) => r.createdByName },
            { header: 'description', value: (r) => r.description },
          ],
          items,
        ),
      );
      if (truncated) context.err(`(showing the first ${items.length}; more exist: use --all or --limit <n>)`);
    });

  releases
    .command('bases <name>')
    .description(
      'the releases of <name> the devices hold, most-held first: the parents to build deltas from (cowroot-release build --delta-from-fleet)',
    )
    .option(
      '--tag <tag>',
      'only devices with this tag (repeatable: every tag)',
      (tag: string, all: string[]) => [...all, tag],
      [],
    )
    .action(async (name: string, options: { tag: string[] }, command: Command) => {
      const client = await context.client();
      const bases = await client.call(
        client.api.GET('/api/v1/release-bases/{name}', {
          params: { path: { name }, query: { tag: options.tag.length ? options.tag : undefined } },
        }),
      );
      if (context.json(command)) return context.printJson(bases);
      context.out(
        formatTable<Schemas['ReleaseBasesDto']['bases'][number]>(
          [
            { header: 'version', value: (b) => b.version },
            { header: 'devices', value: (b) => String(b.devices) },
          ],
          bases.bases,
        ),
      );
    });

  releases
    .command('show <release> [version]')
    .description('a release (<name>@<version> or <name> <version>) with its artifacts')
    .action(async (first: string, version: string | undefined, _options: unknown, command: Command) => {
      const client = await context.client();
      const release = await client.call(
        client.api.GET('/api/v1/releases/{name}/{version}', { params: { path: releaseRef(first, version) } }),
      );
      if (context.json(command)) return context.printJson(release);
      context.out(
        formatKeyValues([
          ['release', `${release.name}@${release.version}`],
          ['description', release.description],
          ['snapshot uuid', release.snapshotUuid],
          ['created', `${shortTime(release.createdAt)} by ${release.createdByName}`],
        ]),
      );
      context.out('');
      context.out(
        release.artifacts.length === 0
          ? '(no artifacts uploaded yet: cowroot releases publish <dir>)'
          : formatTable<ArtifactView>(
              [
                { header: 'file', value: (a) => a.file },
                { header: 'kind', value: (a) => a.kind },
                { header: 'size', value: (a) => formatBytes(a.size), align: 'right' },
                { header: 'parent', value: (a) => (a.parent ? `${a.parent.name}@${a.parent.version}` : null) },
                { header: 'sha256', value: (a) => `${a.sha256.slice(0, 16)}…` },
                { header: 'uploaded', value: (a) => shortTime(a.createdAt) },
              ],
              release.artifacts,
            ),
      );
    });

  releases
    .command('publish <dir>')
    .description(
      'upload a release built by `cowroot-release build` (its release.json, streams, manifests, signatures); resumes interrupted uploads',
    )
    .option(
      '--chunk-size <size>',
      'bytes per resumable upload request (e.g. 512K, 64M)',
      byteSize('--chunk-size'),
      64 * 1024 * 1024,
    )
    .option('--retries <n>', 'retries of a failed chunk before giving up', positiveInt('--retries'), 5)
    .option('--no-progress', 'no progress bar on stderr')
    .action(
      async (dir: string, options: { chunkSize: number; retries: number; progress: boolean }, command: Command) => {
        const client = await context.client();
        const publisher = new ReleasePublisher(client, context, {
          chunkSize: options.chunkSize,
          retries: options.retries,
          retryDelayMs: 1000,
          progress: options.progress,
        });
        const result = await publisher.publish(dir);
        if (context.json(command)) return context.printJson(result);
        context.out(
          formatTable(
            [
              { header: 'file', value: (a: (typeof result.artifacts)[number]) => a.file },
              { header: 'kind', value: (a) => a.kind },
              { header: 'size', value: (a) => formatBytes(a.size), align: 'right' },
              {
                header: 'outcome',
                value: (a) => (a.resumedAt !== null ? `resumed at ${formatBytes(a.resumedAt)}` : a.outcome),
              },
            ],
            result.artifacts,
          ),
        );
        context.out(`published ${result.name}@${result.version}${result.releaseCreated ? ' (release created)' : ''}`);
      },
    );
}
