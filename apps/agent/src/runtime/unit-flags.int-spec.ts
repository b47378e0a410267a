import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { AGENT_VERSION } from '../version';
import { agentNode, unitNodeFlags } from '../testing/agent-runtime';

const run = promisify(execFile);

/**
 * The bundle started by the node under test (agentNode(): tools/runtimes/run-on-node.sh runs it on every
 * supported one) with the exact node flags of deploy/systemd/cowroot-agent.service: node must accept
 * them without a word. Needs no root; the full run with these flags is bundle.int-spec.ts.
 */
describe('the bundled agent under the systemd unit node flags', () => {
  let dir: string;
  let bundle: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-unit-flags-'));
    bundle = join(dir, 'cowroot-agent.js');
    await run(process.execPath, [
      resolve(__dirname, '../../../../tools/bundle.mjs'),
      resolve(__dirname, '../main.ts'),
      bundle,
      '--executable',
    ]);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the flags from the unit', () => {
    expect(unitNodeFlags()).toEqual(['--lite-mode', '--no-expose-wasm', '--max-semi-space-size=1']);
  });

  it(`starts on ${agentNode()} and prints nothing on stderr (no V8 flag warning)`, async () => {
    const { stdout, stderr } = await run(agentNode(), [...unitNodeFlags(), bundle, '--version']);
    expect(stderr).toBe('');
    expect(stdout).toBe(`${AGENT_VERSION}\n`);
  });

  it('gives every node version the same runtime: no WebAssembly (on 18 --lite-mode alone kept it)', async () => {
    const { stdout, stderr } = await run(agentNode(), [...unitNodeFlags(), '-p', 'typeof WebAssembly']);
    expect(stderr).toBe('');
    expect(stdout).toBe('undefined\n');
  });
});
