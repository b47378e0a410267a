import { useState } from 'react';
import type { Schemas } from '@cowroot/api-client';
import { api, unwrap } from '../api';
import { ConfirmDialog, ConfirmRequest, ErrorNote, Legend, Loading, StackedBar } from '../components';
import { useLiveVersion, useNow, useResource } from '../hooks';
import { abortCloseness } from '../logic/abort-closeness';
import { ExecutionState, STATE_LABEL, STATE_ORDER, StateCounts } from '../logic/execution-states';
import { shortTime } from '../logic/format';
import { ACTION_LABEL, availableActions, RolloutAction, waveStatusText } from '../logic/rollout-actions';
import { Link } from '../nav';
import { useSession } from '../session';

type Rollout = Schemas['RolloutDto'];

function selectorText(selector: Schemas['SelectorDto']): string {
  const parts: string[] = [];
  if (selector.all) parts.push('all devices');
  if (selector.tags?.length) parts.push(`tags ${selector.tags.join(' + ')}`);
  if (selector.deviceIds) parts.push(`${selector.deviceIds.length} named devices`);
  const filter = selector.filter;
  if (filter?.idPrefix) parts.push(`ids ${filter.idPrefix}…`);
  if (filter?.bootedRelease) parts.push(`running ${filter.bootedRelease}`);
  if (filter?.online !== undefined && filter.online !== null) parts.push(filter.online ? 'online' : 'offline');
  return parts.join(', ');
}

async function runAction(rollout: Rollout, action: RolloutAction, reason: string): Promise<unknown> {
  const body = reason ? { reason } : {};
  const params = { path: { id: rollout.id } };
  switch (action) {
    case 'pause':
      return unwrap(api.POST('/api/v1/rollouts/{id}/pause', { params, body }));
    case 'resume':
      return unwrap(api.POST('/api/v1/rollouts/{id}/resume', { params, body }));
    case 'cancel':
      return unwrap(api.POST('/api/v1/rollouts/{id}/cancel', { params, body }));
    case 'approve':
      return unwrap(api.POST('/api/v1/rollouts/{id}/approve', { params, body }));
    case 'retry-failed':
      return unwrap(api.POST('/api/v1/rollouts/{id}/retry-failed', { params, body }));
    case 'revert':
      return unwrap(api.POST('/api/v1/rollbacks', { body: { rolloutId: rollout.id, ...body } }));
  }
}

const CONFIRM_TEXT: Record<RolloutAction, string> = {
  pause: 'No new devices get the update; devices in flight finish and report.',
  resume: 'Dispatching continues; a wave that missed its criterion counts as accepted.',
  cancel: 'Stops for good: devices not dispatched yet are canceled.',
  approve: 'The next wave that waits for an approval starts.',
  'retry-failed': 'Failed, rejected, rolled-back and timed-out devices get another attempt.',
  revert: 'Every device of this rollout that switched is switched back to the snapshot it came from.',
};

function Waves({ rollout }: { rollout: Rollout }) {
  const now = useNow();
  return (
    <section aria-labelledby="waves-h">
      <h2 id="waves-h">Waves</h2>
      <ol className="waves">
        {rollout.waves.map((wave) => (
          <li key={wave.index} className={wave.index === rollout.currentWave ? 'wave current' : 'wave'}>
            <div className="wave-head">
              <strong>Wave {wave.index + 1}</strong>
              <span>
                {wave.size.kind === 'percent'
                  ? `${wave.size.value}%`
                  : `${wave.size.value} device${wave.size.value === 1 ? '' : 's'}`}
              </span>
              <span className={`pill w-${wave.status}`}>{waveStatusText(wave, now)}</span>
            </div>
            <StackedBar counts={wave.counts as StateCounts} total={wave.total} label={`wave ${wave.index + 1}`} />
            <div className="wave-meta">
              <span>
                criterion: ≥ {wave.successPercent}% confirmed within {wave.timeoutSeconds} s
              </span>
              {wave.soakSeconds > 0 && <span>soak {wave.soakSeconds} s</span>}
              {wave.requiresApproval && (
                <span>{wave.approvedBy ? `approved by ${wave.approvedBy}` : 'needs an approval'}</span>
              )}
              <Legend counts={wave.counts as StateCounts} />
            </div>
          </li>
        ))}
      </ol>
    </section>
  );
}

function AbortRules({ rollout }: { rollout: Rollout }) {
  if (rollout.abortRules.length === 0) return null;
  return (
    <section aria-labelledby="rules-h">
      <h2 id="rules-h">Abort rules</h2>
      <ul className="rules">
        {abortCloseness(rollout.abortRules, rollout.counts as StateCounts).map((rule, i) => (
          <li key={i}>
            <span>
              {rule.rule.kind} ≥ {rule.rule.thresholdPercent}% → {rule.rule.action}
            </span>
            <meter
              min={0}
              max={1}
              low={0.5}
              high={0.8}
              optimum={0}
              value={Math.min(rule.closeness, 1)}
              aria-label={`rule ${i + 1} closeness`}
            />
            <span className={rule.closeness >= 1 && rule.armed ? 'error' : 'muted'}>{rule.text}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Executions({ rollout, version }: { rollout: Rollout; version: number }) {
  const [state, setState] = useState<ExecutionState | ''>('');
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1];
  const page = useResource(
    () =>
      unwrap(
        api.GET('/api/v1/rollouts/{id}/executions', {
          params: {
            path: { id: rollout.id },
            query: { ...(state ? { state } : {}), ...(cursor ? { cursor } : {}), limit: 100 },
          },
        }),
      ),
    [rollout.id, state, cursor, version],
  );
  return (
    <section aria-labelledby="exec-h">
      <h2 id="exec-h">Devices</h2>
      <label className="inline">
        State{' '}
        <select
          value={state}
          onChange={(e) => {
            setState(e.target.value as ExecutionState | '');
            setCursors([null]);
          }}
        >
          <option value="">all</option>
          {STATE_ORDER.map((s) => (
            <option key={s} value={s}>
              {STATE_LABEL[s]} ({(rollout.counts as StateCounts)[s] ?? 0})
            </option>
          ))}
        </select>
      </label>
      <ErrorNote error={page.error} />
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Device</th>
              <th>Wave</th>
              <th>State</th>
              <th>Attempt</th>
              <th>Reason / check output</th>
              <th>Dispatched</th>
              <th>Finished</th>
            </tr>
          </thead>
          <tbody>
            {page.data?.items.map((execution) => (
              <tr key={execution.id}>
                <td>
                  <Link href={`/devices/${encodeURIComponent(execution.deviceId)}`}>{execution.deviceId}</Link>
                </td>
                <td>{execution.wave + 1}</td>
                <td>
                  <span className={`dot s-${execution.state}`} aria-hidden="true" /> {STATE_LABEL[execution.state]}
                  {execution.revert?.state ? ` (revert: ${execution.revert.state})` : ''}
                </td>
                <td>{execution.attempt}</td>
                <td className="reason">{execution.failureReason ?? ''}</td>
                <td>{shortTime(execution.dispatchedAt)}</td>
                <td>{shortTime(execution.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="row pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Previous
        </button>
        <button
          type="button"
          disabled={!page.data?.nextCursor}
          onClick={() => page.data?.nextCursor && setCursors([...cursors, page.data.nextCursor])}
        >
          Next →
        </button>
      </div>
    </section>
  );
}

function Timeline({ id }: { id: string }) {
  // the timeline of a big rollout is long: it follows changes at most every 3 s
  const version = useLiveVersion(
    (change) => change.topic === 'audit' || (change.topic === 'rollout' && change.ids?.includes(id) !== false),
    3000,
  );
  const timeline = useResource(
    () => unwrap(api.GET('/api/v1/rollouts/{id}/timeline', { params: { path: { id }, query: { limit: 10000 } } })),
    [id, version],
  );
  const entries = (timeline.data ?? []).slice(-200).reverse();
  return (
    <section aria-labelledby="timeline-h">
      <h2 id="timeline-h">Timeline</h2>
      <ErrorNote error={timeline.error} />
      <ol className="timeline">
        {entries.map((entry) => (
          <li key={entry.id}>
            <time>{shortTime(entry.at)}</time> <strong>{entry.action}</strong> {entry.subjectType} {entry.subjectId}
            <span className="muted"> by {entry.actor.name}</span>
            {entry.reason ? <span> — {entry.reason}</span> : null}
          </li>
        ))}
      </ol>
    </section>
  );
}

export function RolloutView({ id }: { id: string }) {
  const session = useSession();
  const version = useLiveVersion(
    (change) => change.topic === 'rollout' && (change.ids === null || change.ids.includes(id)),
  );
  const rollout = useResource(
    () => unwrap(api.GET('/api/v1/rollouts/{id}', { params: { path: { id } } })),
    [id, version],
  );
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const data = rollout.data;
  if (!data)
    return (
      <>
        <Loading when={rollout.loading} />
        <ErrorNote error={rollout.error} />
      </>
    );
  const actions = availableActions(data, session.role);
  return (
    <article className="rollout">
      <header className="page-head">
        <h1>{data.name}</h1>
        <span className={`pill r-${data.status}`} data-testid="rollout-status">
          {data.status}
        </span>
      </header>
      {data.statusReason && (
        <p
          className={data.status === 'running' || data.status === 'completed' ? 'note' : 'alert'}
          role="status"
          data-testid="status-reason"
        >
          {data.status === 'paused' ? 'Paused: ' : data.status === 'aborted' ? 'Aborted: ' : ''}
          {data.statusReason}
        </p>
      )}
      <dl className="facts">
        <dt>Release</dt>
        <dd>
          {data.release.name}@{data.release.version}
        </dd>
        <dt>Targets</dt>
        <dd>
          {selectorText(data.selector)} ({data.total} devices)
        </dd>
        <dt>Mode</dt>
        <dd>
          {data.continuous ? 'continuous' : 'one-off'},{' '}
          {data.dispatchPerMinute ? `${data.dispatchPerMinute}/min` : 'no rate limit'}, reboot {data.rebootMode}
        </dd>
        <dt>Created</dt>
        <dd>
          {shortTime(data.createdAt)} by {data.createdBy}
        </dd>
      </dl>
      <StackedBar counts={data.counts as StateCounts} total={data.total} label="whole rollout" />
      {actions.length > 0 && (
        <div className="row actions" role="group" aria-label="rollout actions">
          {actions.map((action) => (
            <button
              key={action}
              type="button"
              className={action === 'cancel' || action === 'revert' ? 'danger' : ''}
              onClick={() =>
                setConfirm({
                  title: `${ACTION_LABEL[action]} “${data.name}”?`,
                  body: <p>{CONFIRM_TEXT[action]}</p>,
                  reason: true,
                  confirmLabel: ACTION_LABEL[action],
                  danger: action === 'cancel' || action === 'revert',
                  run: (reason) => runAction(data, action, reason),
                })
              }
            >
              {ACTION_LABEL[action]}
            </button>
          ))}
        </div>
      )}
      <Waves rollout={data} />
      <AbortRules rollout={data} />
      <Executions rollout={data} version={version} />
      <Timeline id={id} />
      <ConfirmDialog
        request={confirm}
        onClose={(done) => {
          setConfirm(null);
          if (done) rollout.reload();
        }}
      />
    </article>
  );
}
