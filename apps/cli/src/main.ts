import { runCli } from './cli';

/** Grace after Ctrl-C: a --watch loop ends by itself (exit 0); anything else is stopped with 130. */
const INTERRUPT_GRACE_MS = 500;

// The bundle's entry (dist/cowroot.js): real process streams and environment.
const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort();
  // an interrupted upload is resumed by running the same `releases publish` again
  setTimeout(() => process.exit(130), INTERRUPT_GRACE_MS).unref();
});

// `cowroot audit export | head`: a reader that went away is not an error of ours
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  interrupt: interrupt.signal,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`cowroot: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
