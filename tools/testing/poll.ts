/**
 * Polls `probe` until it returns a truthy value. A probe that throws (an API call while the server or the
 * device is still coming up) is retried until the deadline, and its last error is quoted if it never
 * heals; `context` adds what the caller can show on a time-out (a console or log tail).
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  options: { timeoutMs: number; intervalMs: number; context?: () => string },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = '';
  for (;;) {
    const value = await probe().catch((error: Error) => {
      lastError = error.message;
      return null;
    });
    if (value) return value;
    if (Date.now() > deadline) {
      const context = options.context?.();
      throw new Error(
        `timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}${context ? `; ${context}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}
