/**
 * The delay before the next MQTT connect attempt after `closes` closes in a row (no connection since that
 * lasted `stableAfterMs`). It doubles once per round over the `servers` the link rotates through, not once per
 * attempt: with three NATS nodes and one dead, the attempt on the dead node costs one initial delay, not a
 * doubling of every later one. With one server this is the plain exponential backoff (docs/agent.md §6: two
 * devices sharing a client id must not kick each other off every second forever).
 */
export function reconnectDelayMs(closes: number, servers: number, initialMs: number, maxMs: number): number {
  const rounds = Math.floor(Math.max(0, closes) / Math.max(1, servers));
  // 2 ** rounds overflows to Infinity long after it passed maxMs; min() keeps it bounded
  return Math.min(initialMs * 2 ** Math.min(rounds, 30), maxMs);
}
