// Bundles one TypeScript entry point into a single CommonJS file runnable with plain `node`:
//   node tools/bundle.mjs <entry.ts> <outfile> [--executable]
// The workspace libraries resolve to their sources; decorators follow tsconfig.base.json.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, outfile] = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
if (!entry || !outfile) {
  console.error('usage: node tools/bundle.mjs <entry.ts> <outfile> [--executable]');
  process.exit(2);
}

await build({
  entryPoints: [resolve(entry)],
  outfile: resolve(outfile),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  tsconfig: resolve(root, 'tsconfig.base.json'),
  alias: {
    '@cowroot/protocol': resolve(root, 'libs/protocol/src/index.ts'),
    '@cowroot/device': resolve(root, 'libs/device/src/index.ts'),
  },
  banner: process.argv.includes('--executable') ? { js: '#!/usr/bin/env node' } : undefined,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
