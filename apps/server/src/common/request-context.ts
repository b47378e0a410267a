import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

interface RequestContext {
  correlationId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` with a correlation id that logs, audit rows and error bodies of this request share. */
export function runWithCorrelationId<T>(correlationId: string | undefined, fn: () => T): T {
  const id = correlationId && /^[A-Za-z0-9._-]{1,128}$/.test(correlationId) ? correlationId : randomUUID();
  return storage.run({ correlationId: id }, fn);
}

export function currentCorrelationId(): string | undefined {
  return storage.getStore()?.correlationId;
}
