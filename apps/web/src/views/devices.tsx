import { FormEvent, useState } from 'react';
import { api, unwrap } from '../api';
import { ConfirmDialog, ConfirmRequest, ErrorNote, Pager } from '../components';
import { useLiveVersion, useNow, useResource } from '../hooks';
import { ago } from '../logic/format';
import { DeviceFilters, deviceFiltersFromSearch, deviceQuery, filterParams } from '../logic/list-filters';
import { mayOperate } from '../logic/rollout-actions';
import { Link, navigate, useLocation } from '../nav';
import { useSession } from '../session';

export function DevicesView() {
  const session = useSession();
  const now = useNow(5000);
  const { search } = useLocation();
  const filters = deviceFiltersFromSearch(search);
  const [draft, setDraft] = useState<DeviceFilters>(filters);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [bulkTag, setBulkTag] = useState('');
  const cursor = cursors[cursors.length - 1];
  const version = useLiveVersion((change) => change.topic === 'device', 2000);
  const page = useResource(
    () => unwrap(api.GET('/api/v1/devices', { params: { query: deviceQuery(filters, cursor) } })),
    [search, cursor, version],
  );

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setCursors([null]);
    setSelected(new Set());
    const params = new URLSearchParams(filterParams(draft)).toString();
    navigate(`/devices${params ? `?${params}` : ''}`, true);
  };
  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const items = page.data?.items ?? [];
  const field = (key: keyof DeviceFilters, label: string) => (
    <label>
      {label}
      <input value={draft[key]} onChange={(e) => setDraft({ ...draft, [key]: e.target.value })} name={key} />
    </label>
  );
  return (
    <section>
      <h1>Devices</h1>
      <form className="filters" onSubmit={apply} role="search">
        {field('q', 'Search id')}
        {field('tag', 'Tag')}
        {field('release', 'Release')}
        <label>
          Online
          <select
            value={draft.online}
            onChange={(e) => setDraft({ ...draft, online: e.target.value as DeviceFilters['online'] })}
          >
            <option value="">either</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
        <label>
          Status
          <select
            value={draft.status}
            onChange={(e) => setDraft({ ...draft, status: e.target.value as DeviceFilters['status'] })}
          >
            <option value="">active</option>
            <option value="decommissioned">decommissioned</option>
          </select>
        </label>
        <button type="submit" className="primary">
          Filter
        </button>
      </form>
      {mayOperate(session.role) && selected.size > 0 && (
        <div className="row bulk" role="group" aria-label="bulk actions">
          <span>{selected.size} selected</span>
          <input
            aria-label="tag to add"
            value={bulkTag}
            onChange={(e) => setBulkTag(e.target.value)}
            placeholder="tag"
          />
          <button
            type="button"
            disabled={!bulkTag.trim()}
            onClick={() =>
              setConfirm({
                title: `Add tag “${bulkTag.trim()}” to ${selected.size} devices?`,
                confirmLabel: 'Add tag',
                run: () =>
                  Promise.all(
                    items
                      .filter((d) => selected.has(d.id))
                      .map((d) =>
                        unwrap(
                          api.PATCH('/api/v1/devices/{id}', {
                            params: { path: { id: d.id } },
                            body: { tags: [...new Set([...d.tags, bulkTag.trim()])] },
                          }),
                        ),
                      ),
                  ),
              })
            }
          >
            Add tag
          </button>
          <button
            type="button"
            className="danger"
            onClick={() =>
              setConfirm({
                title: `Roll back ${selected.size} devices?`,
                body: <p>Each device switches back to its fallback snapshot.</p>,
                reason: true,
                danger: true,
                confirmLabel: 'Roll back',
                run: (reason) =>
                  Promise.all(
                    [...selected].map((deviceId) =>
                      unwrap(api.POST('/api/v1/rollbacks', { body: { deviceId, ...(reason ? { reason } : {}) } })),
                    ),
                  ),
              })
            }
          >
            Roll back
          </button>
        </div>
      )}
      <ErrorNote error={page.error} />
      <div className="scroll">
        <table>
          <thead>
            <tr>
              {mayOperate(session.role) && <th aria-label="select" />}
              <th>Device</th>
              <th>Online</th>
              <th>Booted release</th>
              <th>Tags</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>
            {items.map((device) => (
              <tr key={device.id}>
                {mayOperate(session.role) && (
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`select ${device.id}`}
                      checked={selected.has(device.id)}
                      onChange={() => toggle(device.id)}
                    />
                  </td>
                )}
                <td>
                  <Link href={`/devices/${encodeURIComponent(device.id)}`}>{device.id}</Link>
                </td>
                <td>
                  {device.online ? <span className="ok">● online</span> : <span className="muted">○ offline</span>}
                </td>
                <td>{device.bootedRelease ?? '–'}</td>
                <td>{device.tags.join(', ')}</td>
                <td>{ago(device.lastSeenAt, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {page.data && items.length === 0 && <p className="muted">No devices match.</p>}
      <Pager
        onPrevious={cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : undefined}
        onNext={page.data?.nextCursor ? () => setCursors([...cursors, page.data!.nextCursor!]) : undefined}
      />
      <ConfirmDialog
        request={confirm}
        onClose={(done) => {
          setConfirm(null);
          if (done) {
            setSelected(new Set());
            page.reload();
          }
        }}
      />
    </section>
  );
}
