/**
 * What JetStream answers while a freshly started cluster elects its meta leader and registers its peers:
 * 503 (no JetStream responder yet: seen as `NatsError: 503` when a replica started right after the nodes'
 * /healthz said ok, on Node 22 in CI) and "no suitable peers for placement" (nats-server 2.10). Both pass
 * within seconds; a replica starting then waits instead of dying.
 */
const FORMING = /^503$|no responders|no suitable peers for placement|temporarily unavailable/i;

/** How long a starting replica waits for a forming cluster. */
export const JETSTREAM_FORMING_WAIT_MS = 30_000;

export function isJetStreamForming(error: unknown): boolean {
  const { message, code } = error as { message?: string; code?: string };
  return FORMING.test(message ?? '') || code === '503';
}

/** Runs `attempt` until it succeeds, retrying once a second while JetStream is still forming. */
export async function whileJetStreamForms<T>(
  what: string,
  attempt: () => Promise<T>,
  warn: (message: string) => void,
  waitMs = JETSTREAM_FORMING_WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (!isJetStreamForming(error) || Date.now() > deadline) throw error;
      warn(`${what}: ${(error as Error).message}; the NATS cluster is still forming, trying again in 1 s`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
