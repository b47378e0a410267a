import { FormEvent, useState } from 'react';
import { api, unwrap } from '../api';
import { ErrorNote, Pager } from '../components';
import { useResource } from '../hooks';
import { shortTime } from '../logic/format';
import { AuditFilters, auditExportPath, auditQuery, NO_AUDIT_FILTERS } from '../logic/list-filters';

export function AuditView() {
  const [draft, setDraft] = useState<AuditFilters>(NO_AUDIT_FILTERS);
  const [filters, setFilters] = useState<AuditFilters>(NO_AUDIT_FILTERS);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1];
  const page = useResource(
    () =>
      unwrap(
        api.GET('/api/v1/audit', {
          params: { query: { ...auditQuery(filters), ...(cursor ? { cursor } : {}), limit: 50 } },
        }),
      ),
    [filters, cursor],
  );
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
    setCursors([null]);
  };
  const input = (key: keyof AuditFilters, label: string, type = 'text') => (
    <label>
      {label}
      <input
        type={type}
        value={draft[key]}
        onChange={(e) => setDraft({ ...draft, [key]: e.target.value })}
        name={key}
      />
    </label>
  );
  return (
    <section>
      <h1>Audit log</h1>
      <form className="filters" onSubmit={apply} role="search">
        {input('actorId', 'Actor id')}
        {input('action', 'Action (exact, or a prefix*)')}
        {input('subjectType', 'Subject type')}
        {input('subjectId', 'Subject id')}
        {input('from', 'From', 'datetime-local')}
        {input('to', 'To', 'datetime-local')}
        <button type="submit" className="primary">
          Filter
        </button>
      </form>
      <div className="row">
        {/* same-origin downloads: the session cookie authenticates them, no token in the URL */}
        <a className="button" href={auditExportPath(filters, 'csv')} download="audit.csv">
          Export CSV
        </a>
        <a className="button" href={auditExportPath(filters, 'json')} download="audit.json">
          Export JSON
        </a>
      </div>
      <ErrorNote error={page.error} />
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Time</th>
              <th>Actor</th>
              <th>Action</th>
              <th>Subject</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {page.data?.items.map((entry) => (
              <tr key={entry.id}>
                <td>{shortTime(entry.at)}</td>
                <td>
                  {entry.actorName} <span className="muted">({entry.actorType})</span>
                </td>
                <td>{entry.action}</td>
                <td>
                  {entry.subjectType} {entry.subjectId}
                </td>
                <td>{entry.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager
        onPrevious={cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : undefined}
        onNext={page.data?.nextCursor ? () => setCursors([...cursors, page.data!.nextCursor!]) : undefined}
      />
    </section>
  );
}
