import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { unitNodeFlags } from '../../../../apps/agent/src/testing/agent-runtime';

const UNIT = 'deploy/systemd/cowroot-agent.service';

/**
 * The node flags the device child runs with: those of the agent's systemd unit, read from the unit
 * itself (never a copy that drifts: the unit gained --no-expose-wasm after the bench was written), so
 * that its peak RSS is the agent's. The unit is looked up from where this file runs: the sources, or
 * the bench bundle in dist/bench/.
 */
export function agentNodeFlags(from = __dirname): string[] {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, UNIT))) return unitNodeFlags(join(dir, UNIT));
    if (dirname(dir) === dir) throw new Error(`bench:delta: ${UNIT} not found above ${from}`);
  }
}
