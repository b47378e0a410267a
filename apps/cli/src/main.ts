import { runCli } from './cli';

// The bundle's entry (dist/cowroot.js): real process streams and environment, Ctrl-C ends --watch loops.
const interrupt = new AbortController();
process.once('SIGINT', () => interrupt.abort());

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupt: interrupt.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`cowroot: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
