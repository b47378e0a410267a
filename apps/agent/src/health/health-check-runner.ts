import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HealthCheckKind, HealthCheckResult } from '@cowroot/protocol';
import { sanitizeCheckName, sanitizeCheckOutput } from './check-output';

/** Bytes of a check's output kept while it runs (the report keeps at most 4096 characters of them). */
export const OUTPUT_TAIL_BYTES = 4096;

/** Keeps the last `limit` bytes of what a check prints (stdout and stderr interleaved, as a human sees it). */
class OutputTail {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0].length >= this.limit) {
      this.bytes -= this.chunks.shift()!.length;
    }
  }

  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * Runs one executable with a timeout. It gets its own process group so a timeout kills whatever it
 * started too (a hung `ping` in a shell script must not outlive the check).
 */
export function runCheckExecutable(
  path: string,
  timeoutMs: number,
): Promise<{ passed: boolean; output: string; durationMs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const tail = new OutputTail(OUTPUT_TAIL_BYTES);
    let timedOut = false;
    let done = false;
    const child = spawn(path, [], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const finish = (passed: boolean, note?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // leftovers of a passing check are killed too: a check is a test, not a service
      killGroup();
      if (note) tail.push(Buffer.from(`${note}\n`));
      resolve({ passed, output: sanitizeCheckOutput(tail.toString()), durationMs: Date.now() - started });
    };
    child.stdout!.on('data', (chunk: Buffer) => tail.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => tail.push(chunk));
    child.on('error', (error) => finish(false, `[cowroot] could not run ${path}: ${error.message}`));
    // 'exit', not 'close': a grandchild holding the pipes open must not stretch the check past its exit
    child.on('exit', (code, signal) => {
      if (timedOut) finish(false, `[cowroot] killed after the ${timeoutMs} ms timeout`);
      else if (code === 0) finish(true);
      else finish(false, `[cowroot] exit ${code ?? `signal ${signal}`}`);
    });
  });
}

/**
 * The operator's checks (greenboot style): every regular file in the directory, in name order. Hidden
 * files are skipped; a file that is not executable is a failed check, not a skipped one, so a lost
 * `chmod +x` cannot silently turn a required check off.
 */
export async function runCheckDirectory(
  dir: string,
  kind: HealthCheckKind,
  timeoutMs: number,
): Promise<HealthCheckResult[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => !name.startsWith('.')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const results: HealthCheckResult[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const stats = await stat(path).catch(() => null);
    if (!stats?.isFile()) continue;
    const executable = await access(path, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!executable) {
      results.push({
        name: sanitizeCheckName(name),
        kind,
        passed: false,
        durationMs: 0,
        outputTail: sanitizeCheckOutput(`[cowroot] ${path} is not executable`),
      });
      continue;
    }
    const run = await runCheckExecutable(path, timeoutMs);
    results.push({
      name: sanitizeCheckName(name),
      kind,
      passed: run.passed,
      durationMs: run.durationMs,
      outputTail: run.output,
    });
  }
  return results;
}
