import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** deploy/systemd/cowroot-agent.service, the unit that runs the agent on a device (from the sources) */
export const AGENT_UNIT = resolve(__dirname, '../../../../deploy/systemd/cowroot-agent.service');

/**
 * The node flags of the agent's systemd unit (`ExecStart=/usr/bin/node <flags> <bundle> ...`), so that
 * tests and the bench run the bundle exactly as a device does. `unitFile`: where the unit is when this
 * runs from a bundle (the bench in dist/bench/).
 */
export function unitNodeFlags(unitFile = AGENT_UNIT): string[] {
  const unit = readFileSync(unitFile, 'utf8');
  const execStart = /^ExecStart=\S*node((?:\s+--\S+)*)\s/m.exec(unit);
  if (!execStart) throw new Error('cowroot-agent.service: no ExecStart=/usr/bin/node line');
  return execStart[1].trim().split(/\s+/).filter(Boolean);
}

/**
 * The node that runs the bundled agent in the bundle tests: COWROOT_TEST_AGENT_NODE when set (the harness,
 * its broker and the server then stay on the node running jest: tools/runtimes/run-on-node.sh runs the
 * bundle on Node 18.19, where the test broker's aedes cannot load), else the node running jest.
 */
export function agentNode(): string {
  return process.env.COWROOT_TEST_AGENT_NODE || process.execPath;
}
