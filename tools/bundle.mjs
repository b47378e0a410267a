// Bundles one TypeScript entry point into a single CommonJS file runnable with plain `node`:
//   node tools/bundle.mjs <entry.ts> <outfile> [--executable]   (--executable: #! line and mode 755)
// The workspace libraries resolve to their sources; decorators follow tsconfig.base.json.
import { build } from 'esbuild';
import { chmod, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, outfile] = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
if (!entry || !outfile) {
  console.error('usage: node tools/bundle.mjs <entry.ts> <outfile> [--executable]');
  process.exit(2);
}

// esbuild keeps an entry's own #! line; add one only where the source has none
const executable = process.argv.includes('--executable');
const hasHashbang = (await readFile(resolve(entry), 'utf8')).startsWith('#!');

await build({
  entryPoints: [resolve(entry)],
  outfile: resolve(outfile),
  bundle: true,
  platform: 'node',
  // the oldest Node.js a supported device distribution ships (Debian 12: 18.19); the agent checks it at
  // start (apps/agent/src/runtime/node-version.ts MIN_NODE_VERSION, held equal by node-version.spec.ts)
  target: 'node18.19',
  // ...and the few newer syntax forms that Node 12 and 14 (Debian 11, Ubuntu 22.04) cannot parse are
  // lowered, so that the whole file parses there and the agent's version check can say what it needs
  // instead of dying with a SyntaxError (tools/runtimes/run-on-node.sh runs it on 12 and 14)
  supported: {
    'nullish-coalescing': false,
    'optional-chain': false,
    'logical-assignment': false,
    'class-private-method': false,
    'class-private-accessor': false,
    'class-private-static-method': false,
    'class-private-static-accessor': false,
    'class-private-brand-check': false,
    'class-static-blocks': false,
  },
  format: 'cjs',
  tsconfig: resolve(root, 'tsconfig.base.json'),
  alias: {
    '@cowroot/protocol': resolve(root, 'libs/protocol/src/index.ts'),
    '@cowroot/device': resolve(root, 'libs/device/src/index.ts'),
    '@cowroot/api-client': resolve(root, 'libs/api-client/src/index.ts'),
    '@cowroot/device/testing': resolve(root, 'libs/device/src/testing/index.ts'),
    // the ES module build lets esbuild drop the validators nobody uses (with them validator.js and
    // libphonenumber-js): about 1 MB less code and 10 MiB less RSS in the on-device agent
    'class-validator': resolve(root, 'node_modules/class-validator/esm2015/index.js'),
  },
  banner: executable && !hasHashbang ? { js: '#!/usr/bin/env node' } : undefined,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
if (executable) await chmod(resolve(outfile), 0o755);
