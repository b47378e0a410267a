// Bundles the release tool into one CommonJS file runnable with plain `node`:
//   node deploy/release/build.mjs [--outfile <path>]   (default deploy/release/dist/cowroot-release.js)
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const outfileFlag = process.argv.indexOf('--outfile');
const outfile = outfileFlag > 0 ? resolve(process.argv[outfileFlag + 1]) : join(here, 'dist', 'cowroot-release.js');

await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // experimentalDecorators for the protocol's class-validator decorators
  tsconfig: join(repo, 'tsconfig.base.json'),
  alias: { '@cowroot/protocol': join(repo, 'libs', 'protocol', 'src', 'index.ts') },
  sourcemap: true,
  logLevel: 'warning',
});
console.log(`built ${outfile}`);
