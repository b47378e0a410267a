import type { Schemas } from '@cowroot/api-client';

export type CreateRollout = Schemas['CreateRolloutDto'];

export interface WaveRow {
  /** "1" or "25%": a count of devices or a cumulative percentage */
  size: string;
  successPercent: string;
  timeoutSeconds: string;
  soakSeconds: string;
  requiresApproval: boolean;
}

export interface AbortRow {
  kind: Schemas['AbortRuleDto']['kind'];
  thresholdPercent: string;
  minExecuted: string;
  action: Schemas['AbortRuleDto']['action'];
}

export interface RolloutForm {
  name: string;
  /** name@version */
  release: string;
  tags: string;
  idPrefix: string;
  bootedRelease: string;
  online: '' | 'true' | 'false';
  deviceIds: string;
  all: boolean;
  waves: WaveRow[];
  abortRules: AbortRow[];
  dispatchPerMinute: string;
  continuous: boolean;
  reason: string;
}

export function emptyForm(): RolloutForm {
  return {
    name: '',
    release: '',
    tags: '',
    idPrefix: '',
    bootedRelease: '',
    online: '',
    deviceIds: '',
    all: false,
    waves: [
      { size: '1', successPercent: '100', timeoutSeconds: '600', soakSeconds: '0', requiresApproval: false },
      { size: '25%', successPercent: '95', timeoutSeconds: '1800', soakSeconds: '0', requiresApproval: false },
      { size: '100%', successPercent: '95', timeoutSeconds: '3600', soakSeconds: '0', requiresApproval: false },
    ],
    abortRules: [{ kind: 'any', thresholdPercent: '20', minExecuted: '1', action: 'pause' }],
    dispatchPerMinute: '',
    continuous: false,
    reason: '',
  };
}

const words = (text: string) => text.split(/[\s,]+/).filter(Boolean);
const num = (text: string) => (text.trim() === '' ? undefined : Number(text));

export function releaseRef(text: string): { name: string; version: string } | null {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return null;
  return { name: text.slice(0, at).trim(), version: text.slice(at + 1).trim() };
}

/** The selector part of the form, as the API takes it (used for the live preview too). */
export function formSelector(form: RolloutForm): Schemas['SelectorDto'] {
  const selector: Schemas['SelectorDto'] = {};
  if (form.all) selector.all = true;
  if (words(form.tags).length) selector.tags = words(form.tags);
  if (words(form.deviceIds).length) selector.deviceIds = words(form.deviceIds);
  const filter: Schemas['SelectorFilterDto'] = {};
  if (form.idPrefix.trim()) filter.idPrefix = form.idPrefix.trim();
  if (form.bootedRelease.trim()) filter.bootedRelease = form.bootedRelease.trim();
  if (form.online) filter.online = form.online === 'true';
  if (Object.keys(filter).length) selector.filter = filter;
  return selector;
}

/**
 * The request body. Values are passed as typed (numbers stay numbers, bad ones stay NaN-free strings
 * turned into numbers) so that the server's validation, not a second copy of it here, decides what is
 * wrong; its messages are shown on the fields (fieldErrors).
 */
export function toCreateRollout(form: RolloutForm): CreateRollout {
  const release = releaseRef(form.release) ?? { name: form.release.trim(), version: '' };
  const body: CreateRollout = {
    name: form.name.trim(),
    release,
    selector: formSelector(form),
    waves: form.waves.map((row) => {
      const size = row.size.trim();
      const wave: Schemas['WaveDto'] = {
        timeoutSeconds: num(row.timeoutSeconds) as number,
        successPercent: num(row.successPercent),
        soakSeconds: num(row.soakSeconds),
        requiresApproval: row.requiresApproval,
      };
      if (size.endsWith('%')) wave.percent = Number(size.slice(0, -1));
      else wave.count = Number(size);
      return wave;
    }),
    abortRules: form.abortRules.map((row) => ({
      kind: row.kind,
      thresholdPercent: Number(row.thresholdPercent),
      minExecuted: num(row.minExecuted),
      action: row.action,
    })),
    continuous: form.continuous,
  };
  if (form.dispatchPerMinute.trim()) body.dispatchPerMinute = Number(form.dispatchPerMinute);
  if (form.reason.trim()) body.reason = form.reason.trim();
  return body;
}

/** Form fields the server's messages are shown on. */
export type FieldKey = string;

/**
 * Maps the server's error answer onto form fields. Validation problems start with the property path
 * (class-validator: "waves.1.timeoutSeconds must not be less than 1"); domain codes name their field.
 * Field keys: name, release, selector, waves, waves.<i>, abortRules.<i>, dispatchPerMinute, form.
 */
export function fieldErrors(error: { code: string; message: string; details?: unknown }): Record<FieldKey, string[]> {
  const out: Record<FieldKey, string[]> = {};
  const add = (key: FieldKey, message: string) => (out[key] ??= []).push(message);
  const problems = (error.details as { problems?: unknown } | undefined)?.problems;
  if (error.code === 'INVALID' && Array.isArray(problems)) {
    for (const problem of problems.map(String)) {
      const path = problem.split(' ')[0];
      const [head, index] = path.split('.');
      if (head === 'waves' || head === 'abortRules')
        add(index !== undefined && /^\d+$/.test(index) ? `${head}.${index}` : head, problem);
      else if (head === 'release') add('release', problem);
      else if (head === 'selector') add('selector', problem);
      else if (head === 'name' || head === 'dispatchPerMinute' || head === 'reason') add(head, problem);
      else add('form', problem);
    }
    return out;
  }
  const byCode: Record<string, FieldKey> = {
    ROLLOUT_SELECTOR_EMPTY: 'selector',
    ROLLOUT_WAVES_INVALID: 'waves',
    RELEASE_NOT_FOUND: 'release',
    RELEASE_HAS_NO_ARTIFACTS: 'release',
  };
  add(byCode[error.code] ?? 'form', error.message);
  return out;
}
