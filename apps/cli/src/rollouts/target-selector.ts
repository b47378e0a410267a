import type { Schemas } from '@cowroot/api-client';
import { CliError } from '../cli-error';

/**
 * Which devices a rollout targets, as the server's DeviceSelector (apps/server/src/devices/device-selection.ts):
 * every part given must hold (AND); `all` must be said explicitly.
 */
/** The selector of a rollout (the server's SelectorDto). */
export type TargetSelector = Schemas['SelectorDto'];

export interface SelectorArgs {
  tag?: string[];
  device?: string[];
  filter?: string[];
  allDevices?: boolean;
}

const FILTER_KEYS: Record<string, 'bootedRelease' | 'online' | 'idPrefix'> = {
  release: 'bootedRelease',
  online: 'online',
  'id-prefix': 'idPrefix',
};

/**
 * `--tag` (repeatable: all must match), `--device` (repeatable), `--filter release=<name@version>`,
 * `--filter online=true|false`, `--filter id-prefix=<prefix>`, or `--all-devices`. Targeting the whole fleet
 * has to be said out loud: an empty selector is a usage error, never "everything".
 */
export function parseSelector(args: SelectorArgs): TargetSelector {
  const tags = args.tag ?? [];
  const ids = args.device ?? [];
  const filters = args.filter ?? [];
  if (args.allDevices && (tags.length > 0 || filters.length > 0 || ids.length > 0)) {
    throw CliError.usage('--all-devices does not combine with --tag, --device or --filter');
  }
  if (ids.length === 0 && tags.length === 0 && filters.length === 0 && !args.allDevices) {
    throw CliError.usage(
      'choose the target: --tag <tag>, --filter <key=value>, --device <id> (each repeatable) or --all-devices',
    );
  }
  if (args.allDevices) return { all: true };
  const selector: TargetSelector = {};
  if (tags.length > 0) selector.tags = [...new Set(tags)];
  if (ids.length > 0) {
    const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
    if (duplicate) throw CliError.usage(`--device ${duplicate} given twice`);
    selector.deviceIds = ids;
  }
  if (filters.length > 0) {
    const filter: NonNullable<TargetSelector['filter']> = {};
    for (const item of filters) {
      const eq = item.indexOf('=');
      const key = FILTER_KEYS[eq > 0 ? item.slice(0, eq) : ''];
      const value = item.slice(eq + 1);
      if (!key || value === '') {
        throw CliError.usage(
          `--filter ${JSON.stringify(item)}: use release=<name@version>, online=true|false or id-prefix=<prefix>`,
        );
      }
      if (key in filter) throw CliError.usage(`--filter ${item.slice(0, eq)} given twice`);
      if (key === 'online') {
        if (value !== 'true' && value !== 'false')
          throw CliError.usage(`--filter online= takes true or false, got ${JSON.stringify(value)}`);
        filter.online = value === 'true';
      } else {
        filter[key] = value;
      }
    }
    selector.filter = filter;
  }
  return selector;
}

/** "tags canary,site=berlin", "3 listed devices", "all devices" */
export function describeSelector(selector: TargetSelector): string {
  if (selector.all) return 'all devices';
  const parts: string[] = [];
  if (selector.tags?.length) parts.push(`tags ${selector.tags.join(',')}`);
  if (selector.deviceIds)
    parts.push(`${selector.deviceIds.length} listed device${selector.deviceIds.length === 1 ? '' : 's'}`);
  if (selector.filter) parts.push(...Object.entries(selector.filter).map(([key, value]) => `${key}=${String(value)}`));
  return parts.join(' ') || '-';
}
