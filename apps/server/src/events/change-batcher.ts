import type { Change } from './change-feed.service';

export interface ChangeBatcher {
  add(change: Change): void;
  stop(): void;
}

/**
 * Collects changes for `windowMs` and flushes them merged by topic: ids are unioned, and a topic with an
 * unlisted (null) change or more than 100 ids becomes null ("reload everything of this topic").
 */
export function changeBatcher(windowMs: number, flush: (changes: Change[]) => void): ChangeBatcher {
  let pending = new Map<Change['topic'], Set<string> | null>();
  let timer: NodeJS.Timeout | null = null;
  const emit = () => {
    timer = null;
    const out: Change[] = [...pending.entries()].map(([topic, ids]) => ({
      topic,
      ids: ids === null || ids.size > 100 ? null : [...ids].sort(),
    }));
    pending = new Map();
    if (out.length > 0) flush(out);
  };
  return {
    add(change) {
      const known = pending.get(change.topic);
      if (change.ids === null || known === null) pending.set(change.topic, null);
      else pending.set(change.topic, new Set([...(known ?? []), ...change.ids]));
      timer ??= setTimeout(emit, windowMs);
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
