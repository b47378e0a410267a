// Bundles the agent into ONE file runnable with plain `node` (no node_modules on the device):
//   node apps/agent/build.mjs  →  dist/cowroot-agent.js
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

await build({
  entryPoints: [resolve(root, 'apps/agent/src/main.ts')],
  outfile: resolve(root, 'dist/cowroot-agent.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // class-validator decorators: esbuild honours experimentalDecorators from this tsconfig
  tsconfig: resolve(root, 'tsconfig.base.json'),
  alias: {
    '@cowroot/protocol': resolve(root, 'libs/protocol/src/index.ts'),
    '@cowroot/device': resolve(root, 'libs/device/src/index.ts'),
  },
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  logLevel: 'info',
});
