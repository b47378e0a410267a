import { useState } from 'react';
import type { Schemas } from '@cowroot/api-client';
import { api, unwrap } from '../api';
import { ConfirmDialog, ConfirmRequest, ErrorNote, Loading } from '../components';
import { useLiveVersion, useNow, useResource } from '../hooks';
import { deviceDeltaFormats } from '../logic/delta-formats';
import { ago, formatBytes, shortTime } from '../logic/format';
import { mayOperate } from '../logic/rollout-actions';
import { useSession } from '../session';

type Device = Schemas['DeviceDto'];
type Command = Schemas['SendCommandDto'];

function sendCommand(id: string, body: Command) {
  return unwrap(api.POST('/api/v1/devices/{id}/commands', { params: { path: { id } }, body }));
}

function Snapshots({ device, onAction }: { device: Device; onAction: ((request: ConfirmRequest) => void) | null }) {
  const byUuid = new Map(device.snapshots.map((s) => [s.uuid, s.id]));
  return (
    <section aria-labelledby="snap-h">
      <h2 id="snap-h">Snapshots</h2>
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Snapshot</th>
              <th>Release</th>
              <th>Parent</th>
              <th>Origin</th>
              <th>Created</th>
              {onAction && <th>Actions</th>}
            </tr>
          </thead>
          <tbody>
            {device.snapshots.map((snapshot) => {
              const booted = snapshot.id === device.bootedSnapshot;
              return (
                <tr key={snapshot.id}>
                  <td>
                    {snapshot.id}
                    {booted && <span className="pill">booted</span>}
                    {snapshot.id === device.fallbackSnapshot && <span className="pill">fallback</span>}
                  </td>
                  <td>{snapshot.release ? `${snapshot.release.name}@${snapshot.release.version}` : '–'}</td>
                  <td>
                    {snapshot.parentUuid ? (byUuid.get(snapshot.parentUuid) ?? snapshot.parentUuid.slice(0, 8)) : '–'}
                  </td>
                  <td>{snapshot.origin}</td>
                  <td>{shortTime(snapshot.createdAt)}</td>
                  {onAction && (
                    <td>
                      <div className="row cell-actions">
                        {!booted && (
                          <button
                            type="button"
                            onClick={() =>
                              onAction({
                                title: `Switch ${device.id} to ${snapshot.id}?`,
                                body: (
                                  <p>
                                    The device boots the snapshot on trial and confirms it if its health checks pass.
                                  </p>
                                ),
                                confirmLabel: 'Switch',
                                run: () => sendCommand(device.id, { type: 'switch', snapshot: snapshot.id }),
                              })
                            }
                          >
                            Switch to
                          </button>
                        )}
                        {!booted && snapshot.id !== device.fallbackSnapshot && (
                          <button
                            type="button"
                            className="danger"
                            onClick={() =>
                              onAction({
                                title: `Delete snapshot ${snapshot.id} on ${device.id}?`,
                                confirmLabel: 'Delete',
                                danger: true,
                                run: () => sendCommand(device.id, { type: 'delete', snapshots: [snapshot.id] }),
                              })
                            }
                          >
                            Delete
                          </button>
                        )}
                      </div>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function DeviceView({ id }: { id: string }) {
  const session = useSession();
  const now = useNow(5000);
  const version = useLiveVersion(
    (change) => change.topic === 'device' && (change.ids === null || change.ids.includes(id)),
  );
  const device = useResource(
    () => unwrap(api.GET('/api/v1/devices/{id}', { params: { path: { id } } })),
    [id, version],
  );
  const commands = useResource(
    () => unwrap(api.GET('/api/v1/devices/{id}/commands', { params: { path: { id }, query: { limit: 20 } } })),
    [id, version],
  );
  const audit = useResource(
    () => unwrap(api.GET('/api/v1/audit', { params: { query: { subjectType: 'device', subjectId: id, limit: 50 } } })),
    [id, version],
  );
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const data = device.data;
  if (!data)
    return (
      <>
        <Loading when={device.loading} />
        <ErrorNote error={device.error} />
      </>
    );
  const operate = mayOperate(session.role) && data.status === 'active';
  const trial = data.lastTrialResult as Schemas['LastTrialResultDto'] | null;
  const pending = data.pendingTrial as Schemas['PendingTrialDto'] | null;
  return (
    <article>
      <header className="page-head">
        <h1>{data.id}</h1>
        <span className={data.online ? 'pill ok' : 'pill'}>{data.online ? 'online' : 'offline'}</span>
        {data.status !== 'active' && <span className="pill">{data.status}</span>}
      </header>
      {operate && (
        <div className="row actions" role="group" aria-label="device actions">
          <button
            type="button"
            className="danger"
            onClick={() =>
              setConfirm({
                title: `Roll back ${data.id}?`,
                body: <p>The device switches back to its fallback snapshot {data.fallbackSnapshot ?? ''}.</p>,
                reason: true,
                danger: true,
                confirmLabel: 'Roll back',
                run: (reason) =>
                  unwrap(api.POST('/api/v1/rollbacks', { body: { deviceId: data.id, ...(reason ? { reason } : {}) } })),
              })
            }
          >
            Roll back
          </button>
          <button
            type="button"
            onClick={() =>
              setConfirm({
                title: `Reboot ${data.id}?`,
                confirmLabel: 'Reboot',
                run: () => sendCommand(data.id, { type: 'reboot' }),
              })
            }
          >
            Reboot
          </button>
        </div>
      )}
      <dl className="facts">
        <dt>Booted</dt>
        <dd data-testid="booted">
          {data.bootedSnapshot ?? '–'} ({data.bootedRelease ?? 'no release'}){data.trialBoot ? ' — on trial' : ''}
        </dd>
        <dt>Fallback</dt>
        <dd>{data.fallbackSnapshot ?? '–'}</dd>
        <dt>Pending trial</dt>
        <dd>{pending ? `${pending.snapshot} (${pending.state})` : '–'}</dd>
        <dt>Last trial</dt>
        <dd>
          {trial ? `${trial.snapshot}: ${trial.outcome}${trial.check ? ` (check ${trial.check})` : ''}` : '–'}
          {trial?.outputTail && <pre className="output">{trial.outputTail}</pre>}
        </dd>
        <dt>Tags</dt>
        <dd>{data.tags.join(', ') || '–'}</dd>
        <dt>Agent</dt>
        <dd>
          {data.agentVersion ?? '–'}, free {formatBytes(data.freeBytes)}, last seen {ago(data.lastSeenAt, now)}
        </dd>
        <dt>Delta formats</dt>
        <dd data-testid="delta-formats">{deviceDeltaFormats(data.deltaFormats)}</dd>
      </dl>
      <Snapshots device={data} onAction={operate ? setConfirm : null} />
      <section aria-labelledby="cmd-h">
        <h2 id="cmd-h">Commands</h2>
        <ErrorNote error={commands.error} />
        <div className="scroll">
          <table>
            <tbody>
              {commands.data?.items.map((command) => (
                <tr key={command.id}>
                  <td>{shortTime(command.createdAt)}</td>
                  <td>{command.type}</td>
                  <td>
                    <span className="pill">{command.status}</span>
                  </td>
                  <td className="muted">{command.createdBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="dev-audit-h">
        <h2 id="dev-audit-h">Audit timeline</h2>
        <ol className="timeline">
          {audit.data?.items.map((entry) => (
            <li key={entry.id}>
              <time>{shortTime(entry.at)}</time> <strong>{entry.action}</strong>{' '}
              <span className="muted">by {entry.actorName}</span>
              {entry.reason ? ` — ${entry.reason}` : ''}
            </li>
          ))}
        </ol>
      </section>
      <ConfirmDialog
        request={confirm}
        onClose={(done) => {
          setConfirm(null);
          if (done) {
            device.reload();
            commands.reload();
          }
        }}
      />
    </article>
  );
}
