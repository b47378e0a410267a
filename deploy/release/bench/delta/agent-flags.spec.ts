import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentNodeFlags } from './agent-flags';

describe(agentNodeFlags.name, () => {
  it('reads the node flags of the agent unit, found from the sources and from a bundle’s folder', () => {
    const flags = agentNodeFlags();
    // what makes the agent's RSS (deploy/systemd/cowroot-agent.service); the unit may gain others
    expect(flags).toEqual(expect.arrayContaining(['--lite-mode', '--max-semi-space-size=1']));
    expect(flags.every((flag) => flag.startsWith('--'))).toBe(true);
    expect(agentNodeFlags(join(__dirname, '../../../../dist/bench'))).toEqual(flags);
  });

  it('fails, naming the unit, where no unit lies above', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cowroot-agent-flags-'));
    try {
      expect(() => agentNodeFlags(dir)).toThrow(/deploy\/systemd\/cowroot-agent.service not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
