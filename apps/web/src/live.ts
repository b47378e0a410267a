/** One change of the server's feed (GET /api/v1/events): a topic and its subjects, null = many. */
export interface Change {
  topic: 'rollout' | 'device' | 'release' | 'audit';
  ids: string[] | null;
}

type Listener = (change: Change) => void;
type StateListener = (connected: boolean) => void;

const listeners = new Set<Listener>();
const stateListeners = new Set<StateListener>();
let source: EventSource | null = null;
let connected = false;
let lostOnce = false;

function setConnected(value: boolean): void {
  connected = value;
  for (const listener of stateListeners) listener(value);
}

/**
 * The page's one EventSource on /api/v1/events, shared by every view and authenticated by the session
 * cookie (EventSource cannot send headers, and a token must never be in a URL). After a reconnect every
 * listener hears "everything changed", since changes during the gap were not seen.
 */
function open(): void {
  if (source) return;
  source = new EventSource('/api/v1/events');
  source.addEventListener('change', (event) => {
    const change = JSON.parse((event as MessageEvent<string>).data) as Change;
    for (const listener of listeners) listener(change);
  });
  source.onopen = () => {
    setConnected(true);
    if (lostOnce)
      for (const topic of ['rollout', 'device', 'release', 'audit'] as const)
        listeners.forEach((l) => l({ topic, ids: null }));
  };
  source.onerror = () => {
    lostOnce = true;
    setConnected(false);
  };
}

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  open();
  return () => listeners.delete(listener);
}

export function watchConnection(listener: StateListener): () => void {
  stateListeners.add(listener);
  listener(connected);
  return () => stateListeners.delete(listener);
}

export function closeLive(): void {
  source?.close();
  source = null;
  setConnected(false);
}
