import { DeviceStatus } from './device.entity';

/**
 * Which devices a rollout targets (docs/rollouts.md "Model"): tags, a filter, or explicit device ids,
 * combined with AND. Device selection is the devices feature's: the SQL below reads its table.
 */
export interface DeviceSelector {
  /** every active device (must be said explicitly) */
  all?: boolean;
  /** every tag must be present */
  tags?: string[];
  deviceIds?: string[];
  filter?: {
    /** `name@version` the device booted */
    bootedRelease?: string;
    online?: boolean;
    idPrefix?: string;
  };
}

export interface SqlFragment {
  sql: string;
  params: unknown[];
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * The WHERE condition over `devices` (aliased `alias`) for a selector, with positional parameters
 * starting at `$firstParam`. Only active devices are ever targeted.
 */
export function selectorCondition(selector: DeviceSelector, alias: string, firstParam: number): SqlFragment {
  const parts = [`${alias}.status = '${DeviceStatus.Active}'`];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${firstParam + params.length - 1}`;
  };
  if (selector.tags?.length) parts.push(`${alias}.tags @> ${param(selector.tags)}::text[]`);
  if (selector.deviceIds) parts.push(`${alias}.id = ANY (${param(selector.deviceIds)}::text[])`);
  if (selector.filter?.bootedRelease !== undefined)
    parts.push(`${alias}.booted_release = ${param(selector.filter.bootedRelease)}`);
  if (selector.filter?.online !== undefined) parts.push(`${alias}.online = ${param(selector.filter.online)}`);
  if (selector.filter?.idPrefix) parts.push(`${alias}.id LIKE ${param(`${escapeLike(selector.filter.idPrefix)}%`)}`);
  return { sql: parts.join(' AND '), params };
}
