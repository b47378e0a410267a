import type { Schemas } from '@cowroot/api-client';
import { CliError } from '../cli-error';
import { parseDuration } from './duration';

/** A wave as the CLI sends it: a size (device count or share of the target) and its own rules. */
export interface WaveSpec {
  /** cumulative: the number (or share of the target) of devices reached once this wave is done */
  size: WaveSize;
  /** share of the wave that must be CONFIRMED (booted the new snapshot and confirmed it) */
  successPercent?: number;
  /** how long the wave may take to meet its success criterion */
  timeoutSeconds?: number;
  /** wait after the wave met its criterion before the next wave starts */
  soakSeconds?: number;
  /** the wave starts only after `cowroot rollouts approve` */
  requiresApproval?: boolean;
}

/** The server's WaveSize (apps/server/src/rollouts/wave-sizing.ts). */
export interface WaveSize {
  kind: 'count' | 'percent';
  value: number;
}

export interface WaveDefaults {
  successPercent?: number;
  timeoutSeconds?: number;
  soakSeconds?: number;
}

/** "95%" or "95" → 95; must be 0 < p ≤ 100. */
export function parsePercent(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (!(value > 0 && value <= 100))
    throw CliError.usage(`${what} must be a percentage above 0 and at most 100, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * One `--wave` value: `<size>[,<option>]...` where size is a device count ("1", "50") or a share of the
 * target ("5%", "0.5%", "100%"), options are `success=<pct>`, `timeout=<duration>`, `soak=<duration>` and
 * `approval` (wait for an operator before starting this wave). Example: `--wave 5%,success=90%,soak=1h`.
 */
export function parseWave(text: string, defaults: WaveDefaults = {}): WaveSpec {
  const [sizeText, ...options] = text.split(',').map((part) => part.trim());
  let size: WaveSize;
  if (/^\d+$/.test(sizeText)) {
    const count = Number(sizeText);
    if (count < 1 || !Number.isSafeInteger(count))
      throw CliError.usage(`wave size must be at least 1 device, got ${JSON.stringify(sizeText)}`);
    size = { kind: 'count', value: count };
  } else if (sizeText.endsWith('%')) {
    size = { kind: 'percent', value: parsePercent(sizeText, 'wave size') };
  } else {
    throw CliError.usage(
      `wave ${JSON.stringify(text)}: the size must be a device count (e.g. 1) or a percentage (e.g. 5%)`,
    );
  }
  const wave: WaveSpec = { size };
  const seen = new Set<string>();
  for (const option of options) {
    const [key, value, extra] = option.split('=');
    if (seen.has(key)) throw CliError.usage(`wave ${JSON.stringify(text)}: ${key} given twice`);
    seen.add(key);
    if (extra !== undefined) throw CliError.usage(`wave ${JSON.stringify(text)}: bad option ${JSON.stringify(option)}`);
    if (key === 'approval' && value === undefined) wave.requiresApproval = true;
    else if (key === 'success' && value) wave.successPercent = parsePercent(value, `wave ${text} success`);
    else if (key === 'timeout' && value)
      wave.timeoutSeconds = positive(parseDuration(value, `wave ${text} timeout`), `wave ${text} timeout`);
    else if (key === 'soak' && value) wave.soakSeconds = parseDuration(value, `wave ${text} soak`);
    else
      throw CliError.usage(
        `wave ${JSON.stringify(text)}: unknown option ${JSON.stringify(option)} (use success=<pct>, timeout=<duration>, soak=<duration>, approval)`,
      );
  }
  return {
    ...wave,
    requiresApproval: wave.requiresApproval ?? false,
    successPercent: wave.successPercent ?? defaults.successPercent,
    timeoutSeconds: wave.timeoutSeconds ?? defaults.timeoutSeconds,
    soakSeconds: wave.soakSeconds ?? defaults.soakSeconds,
  };
}

function positive(seconds: number, what: string): number {
  if (seconds <= 0) throw CliError.usage(`${what} must be longer than 0 s`);
  return seconds;
}

/**
 * Checks a whole list: percentages are cumulative shares of the target, so they must grow, and nothing may
 * come after a 100% wave (it would be empty).
 */
export function validateWaves(waves: readonly WaveSpec[]): void {
  if (waves.length === 0) throw CliError.usage('give at least one --wave (e.g. --wave 1 --wave 5% --wave 100%)');
  let lastPercent = 0;
  let lastCount = 0;
  waves.forEach(({ size }, index) => {
    const previous = waves[index - 1]?.size;
    if (previous?.kind === 'percent' && previous.value === 100)
      throw CliError.usage(`wave ${index + 1} comes after a 100% wave and would be empty`);
    const last = size.kind === 'percent' ? lastPercent : lastCount;
    if (size.value <= last) {
      const unit = size.kind === 'percent' ? '%' : ' devices';
      throw CliError.usage(
        `wave ${index + 1} (${size.value}${unit}) must be larger than the earlier wave of ${last}${unit}: waves are cumulative (1, 5%, 25%, 100% = one canary, then up to 5% of the target, ...)`,
      );
    }
    if (size.kind === 'percent') lastPercent = size.value;
    else lastCount = size.value;
  });
}

/** "5%", "1 device", "12 devices" */
export function describeWaveSize(size: WaveSize | null | undefined): string {
  if (!size) return '-';
  return size.kind === 'percent' ? `${size.value}%` : `${size.value} device${size.value === 1 ? '' : 's'}`;
}

/** The server's WaveDto (a wave of POST /api/v1/rollouts): count or percent, timeout required. */
export type WaveRequest = Schemas['WaveDto'];

export function waveRequest(wave: WaveSpec, defaultTimeoutSeconds: number): WaveRequest {
  return {
    ...(wave.size.kind === 'count' ? { count: wave.size.value } : { percent: wave.size.value }),
    ...(wave.successPercent !== undefined ? { successPercent: wave.successPercent } : {}),
    timeoutSeconds: wave.timeoutSeconds ?? defaultTimeoutSeconds,
    ...(wave.soakSeconds !== undefined ? { soakSeconds: wave.soakSeconds } : {}),
    requiresApproval: wave.requiresApproval ?? false,
  };
}
