import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MIN_NODE_VERSION, nodeVersionProblem } from './node-version';

describe('nodeVersionProblem', () => {
  it('accepts the minimum and every newer release', () => {
    for (const node of ['18.19.0', '18.19.1', '18.20.4', '20.19.2', '22.23.1', '24.0.0', '100.0.0'])
      expect(nodeVersionProblem({ node })).toBeNull();
  });

  it('refuses an older one with one line naming the version it needs and the one it found', () => {
    for (const node of ['18.18.2', '18.0.0', '16.20.2', '14.21.3', '12.22.12', '8.9.4']) {
      const problem = nodeVersionProblem({ node });
      expect(problem).toBe(
        `cowroot-agent: needs Node.js ${MIN_NODE_VERSION} or newer, found Node.js v${node}; install a newer nodejs (docs/agent.md §1)`,
      );
      expect(problem).not.toContain('\n');
    }
  });

  it('compares numerically, field by field, not as strings', () => {
    expect(nodeVersionProblem({ node: '18.9.0' }, '18.19.0')).not.toBeNull();
    expect(nodeVersionProblem({ node: '18.100.0' }, '18.19.0')).toBeNull();
    expect(nodeVersionProblem({ node: '9.0.0' }, '18.19.0')).not.toBeNull();
    expect(nodeVersionProblem({ node: '19.0.0' }, '18.19.5')).toBeNull();
    expect(nodeVersionProblem({ node: '18.19.4' }, '18.19.5')).not.toBeNull();
  });

  it('refuses a runtime whose version it cannot read', () => {
    expect(nodeVersionProblem({})).toContain('found an unrecognised Node.js version (none)');
    expect(nodeVersionProblem({ node: 'banana' })).toContain('found an unrecognised Node.js version (banana)');
  });

  it('is what the running process passes (a version this suite runs on is supported)', () => {
    expect(nodeVersionProblem(process.versions)).toBeNull();
  });

  it('matches the esbuild target of tools/bundle.mjs (the bundle is compiled for the oldest supported node)', () => {
    const bundler = readFileSync(resolve(__dirname, '../../../../tools/bundle.mjs'), 'utf8');
    const target = /^\s*target: '(node[\d.]+)'/m.exec(bundler)?.[1];
    const [major, minor] = MIN_NODE_VERSION.split('.');
    expect(target).toBe(`node${major}.${minor}`);
  });
});
