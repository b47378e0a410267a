import { ReactNode, useEffect, useRef, useState } from 'react';
import { ApiError } from './api';
import { barSegments, barSummary, STATE_LABEL, StateCounts } from './logic/execution-states';

export function StackedBar({ counts, total, label }: { counts: StateCounts; total: number; label: string }) {
  const summary = barSummary(counts, total);
  return (
    <div className="bar" role="img" aria-label={`${label}: ${summary}`} title={summary}>
      {barSegments(counts, total).map((segment) => (
        <span
          key={segment.state}
          className={`seg s-${segment.state}`}
          style={{ width: `${segment.percent}%` }}
          title={`${STATE_LABEL[segment.state]}: ${segment.count}`}
        />
      ))}
    </div>
  );
}

export function Legend({ counts }: { counts: StateCounts }) {
  return (
    <ul className="legend">
      {barSegments(counts, 0).map((segment) => (
        <li key={segment.state}>
          <span className={`dot s-${segment.state}`} aria-hidden="true" /> {STATE_LABEL[segment.state]} {segment.count}
        </li>
      ))}
    </ul>
  );
}

export function ErrorNote({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const code = error instanceof ApiError ? `${error.code}: ` : '';
  return (
    <p className="error" role="alert">
      {code}
      {error.message}
    </p>
  );
}

export function Loading({ when }: { when: boolean }) {
  return when ? <p className="muted">Loading…</p> : null;
}

export interface ConfirmRequest {
  title: string;
  body?: ReactNode;
  /** ask for a reason (recorded in the audit log) */
  reason?: boolean;
  confirmLabel: string;
  danger?: boolean;
  run(reason: string): Promise<unknown>;
}

/**
 * The confirm step of every action: a modal <dialog> (focus is trapped, Esc cancels), an optional reason,
 * and the server's refusal shown in place, e.g. 403 for a role that may not.
 */
export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | null; onClose(done: boolean): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (request && !dialog.open) {
      setReason('');
      setError(undefined);
      dialog.showModal();
    }
    if (!request && dialog.open) dialog.close();
  }, [request]);
  const confirm = async () => {
    if (!request) return;
    setBusy(true);
    try {
      await request.run(reason.trim());
      onClose(true);
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} className="confirm" onCancel={() => onClose(false)} aria-labelledby="confirm-title">
      {request && (
        <form
          method="dialog"
          onSubmit={(event) => {
            event.preventDefault();
            void confirm();
          }}
        >
          <h2 id="confirm-title">{request.title}</h2>
          {request.body}
          {request.reason && (
            <label>
              Reason (recorded in the audit log)
              <textarea value={reason} onChange={(e) => setReason(e.target.value)} rows={2} maxLength={500} />
            </label>
          )}
          <ErrorNote error={error} />
          <div className="row">
            <button type="button" onClick={() => onClose(false)}>
              Back
            </button>
            <button type="submit" className={request.danger ? 'danger' : 'primary'} disabled={busy}>
              {request.confirmLabel}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

export function Pager({ onPrevious, onNext }: { onPrevious?: () => void; onNext?: () => void }) {
  return (
    <div className="row pager">
      <button type="button" onClick={onPrevious} disabled={!onPrevious}>
        ← Previous
      </button>
      <button type="button" onClick={onNext} disabled={!onNext}>
        Next →
      </button>
    </div>
  );
}
