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
  target: 'node20',
  format: 'cjs',
  tsconfig: resolve(root, 'tsconfig.base.json'),
  alias: {
    '@cowroot/protocol': resolve(root, 'libs/protocol/src/index.ts'),
    '@cowroot/device': resolve(root, 'libs/device/src/index.ts'),
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
