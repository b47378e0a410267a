// Bundles the operator CLI into one CommonJS file runnable with plain `node`:
//   node apps/cli/build.mjs [--outfile <path>]   (default dist/cowroot.js at the repository root)
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const outfileFlag = process.argv.indexOf('--outfile');
const outfile = outfileFlag > 0 ? resolve(process.argv[outfileFlag + 1]) : join(repo, 'dist', 'cowroot.js');

await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  banner: { js: '#!/usr/bin/env node' },
  // experimentalDecorators, should a protocol class (class-validator decorators) ever be pulled in
  tsconfig: join(repo, 'tsconfig.base.json'),
  alias: { '@cowroot/protocol': join(repo, 'libs', 'protocol', 'src', 'index.ts') },
  sourcemap: true,
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
console.log(`built ${outfile}`);
