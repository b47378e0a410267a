/**
 * The oldest Node.js the agent runs on: what Debian 12 (bookworm) ships (nodejs 18.19.0 at its release,
 * 18.20.4 in its point releases). tools/bundle.mjs compiles the bundle for the same version (its esbuild
 * `target`); node-version.spec.ts holds the two equal, and tools/runtimes/run-on-node.sh runs the bundle's
 * own tests on it (docs/agent.md §1 lists the supported versions).
 */
export const MIN_NODE_VERSION = '18.19.0';

function parse(version: string): number[] | null {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  return match ? match.slice(1, 4).map(Number) : null;
}

/** -1, 0 or 1 as a is older than, the same as or newer than b (major, minor, patch in turn) */
function compare(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/**
 * Why this runtime cannot run the agent, as the one line to print, or null when it can. Pure: it takes
 * `process.versions`, so a unit test can hand it any version.
 */
export function nodeVersionProblem(versions: { node?: string }, minimum = MIN_NODE_VERSION): string | null {
  const need = parse(minimum);
  if (!need) throw new Error(`MIN_NODE_VERSION ${minimum} is not a version`);
  const have = versions.node === undefined ? null : parse(versions.node);
  if (have && compare(have, need) >= 0) return null;
  const found = have ? `Node.js v${versions.node}` : `an unrecognised Node.js version (${versions.node ?? 'none'})`;
  return `cowroot-agent: needs Node.js ${minimum} or newer, found ${found}; install a newer nodejs (docs/agent.md §1)`;
}
