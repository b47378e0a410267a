import { useCallback, useEffect, useRef, useState } from 'react';
import { Change, subscribe } from './live';

/**
 * A number that goes up when a matching change arrives (coalesced to one bump per coalesceMs), to put in a
 * fetch's dependencies: the view refetches what changed, without a reload.
 */
export function useLiveVersion(match: (change: Change) => boolean, coalesceMs = 150): number {
  const [version, setVersion] = useState(0);
  const matchRef = useRef(match);
  matchRef.current = match;
  useEffect(() => {
    let timer: number | null = null;
    const unsubscribe = subscribe((change) => {
      if (!matchRef.current(change) || timer !== null) return;
      timer = window.setTimeout(() => {
        timer = null;
        setVersion((v) => v + 1);
      }, coalesceMs);
    });
    return () => {
      unsubscribe();
      if (timer !== null) window.clearTimeout(timer);
    };
  }, [coalesceMs]);
  return version;
}

export interface Resource<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  reload(): void;
}

/** Loads `fetcher` whenever `deps` change; the last data stays shown while the next load runs. */
export function useResource<T>(fetcher: () => Promise<T>, deps: unknown[]): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    setState((s) => ({ ...s, loading: true }));
    fetcher().then(
      (data) => current && setState({ data, loading: false }),
      (error: Error) => current && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      current = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A value that follows `value` after it has stayed put for `ms` (the create form's live preview). */
export function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}

/** The clock for "… ago" and soak countdowns, ticking every `ms`. */
export function useNow(ms = 1000): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(new Date()), ms);
    return () => window.clearInterval(timer);
  }, [ms]);
  return now;
}
