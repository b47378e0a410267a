import { api, unwrap } from '../api';
import { ErrorNote, Loading } from '../components';
import { useLiveVersion, useNow, useResource } from '../hooks';
import { ago } from '../logic/format';
import { Link } from '../nav';

const REASON_LABEL: Record<string, string> = {
  'rolled-back': 'rolled back',
  failed: 'failed',
  offline: 'offline for long',
  'pending-trial': 'pending trial',
};

export function FleetView() {
  const now = useNow(5000);
  const version = useLiveVersion((change) => change.topic === 'device' || change.topic === 'rollout', 1000);
  const summary = useResource(() => unwrap(api.GET('/api/v1/fleet/summary')), [version]);
  const data = summary.data;
  if (!data)
    return (
      <>
        <Loading when={summary.loading} />
        <ErrorNote error={summary.error} />
      </>
    );
  const count = (status: string, online?: boolean) =>
    data.devices
      .filter((d) => d.status === status && (online === undefined || d.online === online))
      .reduce((n, d) => n + d.count, 0);
  const maxRelease = Math.max(1, ...data.bootedReleases.map((r) => r.count));
  return (
    <section className="fleet">
      <h1>Fleet</h1>
      <ul className="stats" aria-label="devices by status">
        <li className="card">
          <span className="big" data-testid="fleet-total">
            {data.total}
          </span>{' '}
          devices
        </li>
        <li className="card">
          <span className="big ok">{count('active', true)}</span> online
        </li>
        <li className="card">
          <span className="big">{count('active', false)}</span> offline
        </li>
        <li className="card">
          <span className="big muted">{count('decommissioned')}</span> decommissioned
        </li>
      </ul>
      <div className="grid2">
        <section className="card" aria-labelledby="booted-h">
          <h2 id="booted-h">Booted releases</h2>
          <ul className="hbars">
            {data.bootedReleases.map((row) => (
              <li key={row.release ?? '-'}>
                <Link href={row.release ? `/devices?release=${encodeURIComponent(row.release)}` : '/devices'}>
                  {row.release ?? 'not reported'}
                </Link>
                <span className="hbar" role="img" aria-label={`${row.count} devices`}>
                  <span style={{ width: `${(row.count * 100) / maxRelease}%` }} />
                </span>
                <span>{row.count}</span>
              </li>
            ))}
          </ul>
        </section>
        <section className="card" aria-labelledby="running-h">
          <h2 id="running-h">Running rollouts</h2>
          {data.rollouts.length === 0 && <p className="muted">None.</p>}
          <ul className="plain">
            {data.rollouts.map((rollout) => (
              <li key={rollout.id}>
                <Link href={`/rollouts/${rollout.id}`}>{rollout.name}</Link>{' '}
                <span className={`pill r-${rollout.status}`}>{rollout.status}</span>
                <div className="muted">
                  {rollout.release} · wave {rollout.currentWave + 1}/{rollout.waves} · {rollout.confirmed}/
                  {rollout.total} confirmed
                  {rollout.failed ? ` · ${rollout.failed} failed` : ''}
                  {rollout.statusReason ? ` · ${rollout.statusReason}` : ''}
                </div>
              </li>
            ))}
          </ul>
        </section>
      </div>
      <section className="card" aria-labelledby="attention-h">
        <h2 id="attention-h">Needs attention</h2>
        {data.needsAttention.length === 0 && <p className="muted">Nothing.</p>}
        <div className="scroll">
          <table>
            <tbody>
              {data.needsAttention.map((item) => (
                <tr key={`${item.reason}-${item.deviceId}`}>
                  <td>
                    <Link href={`/devices/${encodeURIComponent(item.deviceId)}`}>{item.deviceId}</Link>
                  </td>
                  <td>
                    <span className={`pill a-${item.reason}`}>{REASON_LABEL[item.reason]}</span>
                  </td>
                  <td className="reason">{item.detail}</td>
                  <td>{ago(item.since, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </section>
  );
}
