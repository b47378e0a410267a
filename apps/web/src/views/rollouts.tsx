import { useState } from 'react';
import type { Schemas } from '@cowroot/api-client';
import { api, unwrap } from '../api';
import { ErrorNote, Loading, StackedBar } from '../components';
import { useLiveVersion, useResource } from '../hooks';
import { StateCounts } from '../logic/execution-states';
import { shortTime } from '../logic/format';
import { mayOperate } from '../logic/rollout-actions';
import { Link } from '../nav';
import { useSession } from '../session';

type Status = Schemas['RolloutStatus'];

export function RolloutsView() {
  const session = useSession();
  const [status, setStatus] = useState<Status | ''>('');
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1];
  const version = useLiveVersion((change) => change.topic === 'rollout');
  const page = useResource(
    () =>
      unwrap(
        api.GET('/api/v1/rollouts', {
          params: { query: { ...(status ? { status } : {}), ...(cursor ? { cursor } : {}), limit: 25 } },
        }),
      ),
    [status, cursor, version],
  );
  return (
    <section>
      <header className="page-head">
        <h1>Rollouts</h1>
        {mayOperate(session.role) && (
          <Link href="/rollouts/new" className="button primary">
            New rollout
          </Link>
        )}
      </header>
      <label className="inline">
        Status{' '}
        <select
          value={status}
          onChange={(e) => {
            setStatus(e.target.value as Status | '');
            setCursors([null]);
          }}
        >
          <option value="">all</option>
          {(['running', 'paused', 'completed', 'canceled', 'aborted'] as const).map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <Loading when={page.loading && !page.data} />
      <ErrorNote error={page.error} />
      <ul className="cards">
        {page.data?.items.map((rollout) => (
          <li key={rollout.id} className="card">
            <div className="row spread">
              <Link href={`/rollouts/${rollout.id}`}>
                <strong>{rollout.name}</strong>
              </Link>
              <span className={`pill r-${rollout.status}`}>{rollout.status}</span>
            </div>
            <div className="muted">
              {rollout.release.name}@{rollout.release.version} · wave {rollout.currentWave + 1}/{rollout.waves.length} ·{' '}
              {rollout.total} devices · {shortTime(rollout.createdAt)}
            </div>
            <StackedBar counts={rollout.counts as StateCounts} total={rollout.total} label={rollout.name} />
          </li>
        ))}
      </ul>
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
