import { FormEvent, ReactNode, useMemo, useState } from 'react';
import { api, ApiError, unwrap } from '../api';
import { ErrorNote } from '../components';
import { useDebounced, useResource } from '../hooks';
import { mayOperate } from '../logic/rollout-actions';
import {
  AbortRow,
  emptyForm,
  fieldErrors,
  formSelector,
  releaseRef,
  RolloutForm,
  toCreateRollout,
  WaveRow,
} from '../logic/rollout-form';
import { navigate } from '../nav';
import { useSession } from '../session';

function Field({ label, errors, children }: { label: string; errors?: string[]; children: ReactNode }) {
  return (
    <label className={errors?.length ? 'field invalid' : 'field'}>
      {label}
      {children}
      {errors?.map((message) => (
        <span key={message} className="field-error" role="alert">
          {message}
        </span>
      ))}
    </label>
  );
}

function Preview({ form }: { form: RolloutForm }) {
  const selector = useDebounced(JSON.stringify(formSelector(form)), 300);
  const release = useDebounced(form.release, 300);
  const preview = useResource(() => {
    const ref = releaseRef(release);
    return unwrap(
      api.POST('/api/v1/rollouts/preview', {
        body: { selector: JSON.parse(selector), ...(ref ? { release: ref } : {}) },
      }),
    );
  }, [selector, release]);
  if (preview.error instanceof ApiError && preview.error.code === 'ROLLOUT_SELECTOR_EMPTY')
    return (
      <p className="muted" aria-live="polite">
        Choose tags, a filter, device ids or all devices.
      </p>
    );
  return (
    <div className="preview" aria-live="polite" data-testid="preview">
      <ErrorNote error={preview.error} />
      {preview.data && (
        <p>
          Targets <strong>{preview.data.targeted}</strong> devices; <strong>{preview.data.alreadyRunning}</strong>{' '}
          already run the release.
          {preview.data.sample.length > 0 && (
            <span className="muted"> e.g. {preview.data.sample.slice(0, 5).join(', ')}</span>
          )}
        </p>
      )}
    </div>
  );
}

export function RolloutCreateView() {
  const session = useSession();
  const [form, setForm] = useState<RolloutForm>(emptyForm);
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [busy, setBusy] = useState(false);
  const releases = useResource(() => unwrap(api.GET('/api/v1/releases', { params: { query: { limit: 100 } } })), []);
  const releaseOptions = useMemo(
    () => (releases.data?.items ?? []).map((r) => `${r.name}@${r.version}`),
    [releases.data],
  );
  if (!mayOperate(session.role)) return <p role="alert">Creating a rollout needs the operator role.</p>;

  const set = <K extends keyof RolloutForm>(key: K, value: RolloutForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const setWave = (i: number, patch: Partial<WaveRow>) =>
    setForm((f) => ({ ...f, waves: f.waves.map((w, j) => (j === i ? { ...w, ...patch } : w)) }));
  const setRule = (i: number, patch: Partial<AbortRow>) =>
    setForm((f) => ({ ...f, abortRules: f.abortRules.map((r, j) => (j === i ? { ...r, ...patch } : r)) }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const rollout = await unwrap(api.POST('/api/v1/rollouts', { body: toCreateRollout(form) }));
      navigate(`/rollouts/${rollout.id}`);
    } catch (error) {
      if (error instanceof ApiError) setErrors(fieldErrors(error));
      else setErrors({ form: [(error as Error).message] });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="create" onSubmit={submit} noValidate>
      <h1>New rollout</h1>
      {errors.form && <ErrorNote error={new Error(errors.form.join('; '))} />}
      <fieldset>
        <legend>What</legend>
        <Field label="Name" errors={errors.name}>
          <input value={form.name} onChange={(e) => set('name', e.target.value)} name="name" />
        </Field>
        <Field label="Release (name@version)" errors={errors.release}>
          <input
            value={form.release}
            onChange={(e) => set('release', e.target.value)}
            list="release-options"
            name="release"
          />
          <datalist id="release-options">
            {releaseOptions.map((option) => (
              <option key={option} value={option} />
            ))}
          </datalist>
        </Field>
      </fieldset>
      <fieldset>
        <legend>Which devices</legend>
        <div className="grid2">
          <Field label="Tags (all of them)" errors={errors.selector}>
            <input
              value={form.tags}
              onChange={(e) => set('tags', e.target.value)}
              name="tags"
              placeholder="site-a, canary"
            />
          </Field>
          <Field label="Device id prefix">
            <input value={form.idPrefix} onChange={(e) => set('idPrefix', e.target.value)} name="idPrefix" />
          </Field>
          <Field label="Running release">
            <input
              value={form.bootedRelease}
              onChange={(e) => set('bootedRelease', e.target.value)}
              name="bootedRelease"
            />
          </Field>
          <Field label="Online">
            <select
              value={form.online}
              onChange={(e) => set('online', e.target.value as RolloutForm['online'])}
              name="online"
            >
              <option value="">either</option>
              <option value="true">online</option>
              <option value="false">offline</option>
            </select>
          </Field>
        </div>
        <Field label="Device ids (space or comma separated)">
          <textarea
            value={form.deviceIds}
            onChange={(e) => set('deviceIds', e.target.value)}
            rows={2}
            name="deviceIds"
          />
        </Field>
        <label className="check">
          <input type="checkbox" checked={form.all} onChange={(e) => set('all', e.target.checked)} name="all" /> all
          active devices
        </label>
        <Preview form={form} />
      </fieldset>
      <fieldset>
        <legend>Waves (cumulative)</legend>
        {errors.waves && <ErrorNote error={new Error(errors.waves.join('; '))} />}
        <div className="scroll">
          <table className="form-table">
            <thead>
              <tr>
                <th>#</th>
                <th>Size (count or %)</th>
                <th>Success %</th>
                <th>Timeout s</th>
                <th>Soak s</th>
                <th>Approval</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {form.waves.map((wave, i) => (
                <tr key={i} className={errors[`waves.${i}`] ? 'invalid' : ''}>
                  <td>{i + 1}</td>
                  <td>
                    <input
                      aria-label={`wave ${i + 1} size`}
                      value={wave.size}
                      onChange={(e) => setWave(i, { size: e.target.value })}
                    />
                  </td>
                  <td>
                    <input
                      aria-label={`wave ${i + 1} success percent`}
                      value={wave.successPercent}
                      onChange={(e) => setWave(i, { successPercent: e.target.value })}
                    />
                  </td>
                  <td>
                    <input
                      aria-label={`wave ${i + 1} timeout`}
                      value={wave.timeoutSeconds}
                      onChange={(e) => setWave(i, { timeoutSeconds: e.target.value })}
                    />
                  </td>
                  <td>
                    <input
                      aria-label={`wave ${i + 1} soak`}
                      value={wave.soakSeconds}
                      onChange={(e) => setWave(i, { soakSeconds: e.target.value })}
                    />
                  </td>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`wave ${i + 1} needs approval`}
                      checked={wave.requiresApproval}
                      onChange={(e) => setWave(i, { requiresApproval: e.target.checked })}
                    />
                  </td>
                  <td>
                    <button
                      type="button"
                      aria-label={`remove wave ${i + 1}`}
                      onClick={() =>
                        set(
                          'waves',
                          form.waves.filter((_, j) => j !== i),
                        )
                      }
                    >
                      ✕
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {form.waves.map(
          (_, i) =>
            errors[`waves.${i}`] && (
              <p key={i} className="field-error" role="alert">
                {errors[`waves.${i}`].join('; ')}
              </p>
            ),
        )}
        <button
          type="button"
          onClick={() =>
            set('waves', [
              ...form.waves,
              { size: '100%', successPercent: '95', timeoutSeconds: '3600', soakSeconds: '0', requiresApproval: false },
            ])
          }
        >
          Add wave
        </button>
      </fieldset>
      <fieldset>
        <legend>Abort rules</legend>
        {form.abortRules.map((rule, i) => (
          <div key={i} className={errors[`abortRules.${i}`] ? 'row rule invalid' : 'row rule'}>
            <select
              aria-label={`rule ${i + 1} kind`}
              value={rule.kind}
              onChange={(e) => setRule(i, { kind: e.target.value as AbortRow['kind'] })}
            >
              {(['any', 'download', 'health-check', 'bootloader', 'timeout'] as const).map((kind) => (
                <option key={kind}>{kind}</option>
              ))}
            </select>
            <label className="inline">
              ≥{' '}
              <input
                aria-label={`rule ${i + 1} threshold percent`}
                value={rule.thresholdPercent}
                onChange={(e) => setRule(i, { thresholdPercent: e.target.value })}
                size={4}
              />{' '}
              %
            </label>
            <label className="inline">
              after{' '}
              <input
                aria-label={`rule ${i + 1} minimum executed`}
                value={rule.minExecuted}
                onChange={(e) => setRule(i, { minExecuted: e.target.value })}
                size={4}
              />{' '}
              outcomes
            </label>
            <select
              aria-label={`rule ${i + 1} action`}
              value={rule.action}
              onChange={(e) => setRule(i, { action: e.target.value as AbortRow['action'] })}
            >
              <option>pause</option>
              <option>revert</option>
            </select>
            <button
              type="button"
              aria-label={`remove rule ${i + 1}`}
              onClick={() =>
                set(
                  'abortRules',
                  form.abortRules.filter((_, j) => j !== i),
                )
              }
            >
              ✕
            </button>
            {errors[`abortRules.${i}`] && (
              <span className="field-error" role="alert">
                {errors[`abortRules.${i}`].join('; ')}
              </span>
            )}
          </div>
        ))}
        <button
          type="button"
          onClick={() =>
            set('abortRules', [
              ...form.abortRules,
              { kind: 'any', thresholdPercent: '10', minExecuted: '1', action: 'pause' },
            ])
          }
        >
          Add rule
        </button>
      </fieldset>
      <fieldset>
        <legend>Pace</legend>
        <div className="grid2">
          <Field label="Dispatch per minute (empty = no limit)" errors={errors.dispatchPerMinute}>
            <input
              value={form.dispatchPerMinute}
              onChange={(e) => set('dispatchPerMinute', e.target.value)}
              name="dispatchPerMinute"
            />
          </Field>
          <label className="check">
            <input type="checkbox" checked={form.continuous} onChange={(e) => set('continuous', e.target.checked)} />{' '}
            continuous (devices that match later join)
          </label>
        </div>
        <Field label="Reason (audit log)" errors={errors.reason}>
          <input value={form.reason} onChange={(e) => set('reason', e.target.value)} name="reason" />
        </Field>
      </fieldset>
      <button type="submit" className="primary" disabled={busy}>
        Create rollout
      </button>
    </form>
  );
}
