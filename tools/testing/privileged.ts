import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Gate for tests that need root, loop devices, btrfs or QEMU (CONVENTIONS.md §7): when a requirement is
 * missing the suite is skipped with the reason printed, unless COWROOT_REQUIRE_PRIVILEGED=1 (set by
 * .ci/run), in which case the suite fails with that reason instead.
 */
export interface Requirement {
  name: string;
  /** returns null when met, else why not */
  check: () => string | null;
}

export const requireRoot: Requirement = {
  name: 'root',
  check: () => (process.getuid?.() === 0 ? null : 'not running as root'),
};

export function requireCommand(command: string): Requirement {
  return {
    name: command,
    check: () => {
      try {
        execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'pipe' });
        return null;
      } catch {
        return `command ${command} not found (run deploy/scripts/install-system-deps.sh)`;
      }
    },
  };
}

export const requireLoopDevices: Requirement = {
  name: 'loop devices',
  check: () => (existsSync('/dev/loop-control') ? null : '/dev/loop-control is missing'),
};

/** A real PostgreSQL for what PGlite (one process, one session) cannot show: several server replicas. */
export const requirePostgres: Requirement = {
  name: 'PostgreSQL',
  check: () => (process.env.TEST_DATABASE_URL ? null : 'TEST_DATABASE_URL is unset (needs a shared PostgreSQL)'),
};

export function unmetRequirements(requirements: Requirement[]): string[] {
  return requirements.map((r) => r.check()).filter((reason): reason is string => reason !== null);
}

/**
 * `describe` that runs only when every requirement is met. Usage:
 *   describePrivileged('btrfs adapter', [requireRoot, requireCommand('btrfs')], () => { ... });
 */
export function describePrivileged(title: string, requirements: Requirement[], body: () => void): void {
  const unmet = unmetRequirements(requirements);
  if (unmet.length === 0) {
    describe(title, body);
    return;
  }
  const reason = unmet.join('; ');
  if (process.env.COWROOT_REQUIRE_PRIVILEGED === '1') {
    describe(title, () => {
      it('has its privileged requirements (COWROOT_REQUIRE_PRIVILEGED=1)', () => {
        throw new Error(`required but unavailable: ${reason}`);
      });
    });
    return;
  }
  console.warn(`skipping "${title}": ${reason}`);
  describe.skip(title, body);
}
export { pollUntil } from './poll';
