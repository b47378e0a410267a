import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', '**/data/**', '**/.cache/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          depConstraints: [
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared', 'scope:testing'] },
            { sourceTag: 'scope:agent', onlyDependOnLibsWithTags: ['scope:shared', 'scope:agent', 'scope:testing'] },
            { sourceTag: 'scope:server', onlyDependOnLibsWithTags: ['scope:shared', 'scope:testing'] },
            { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['scope:shared', 'scope:testing'] },
            // the dashboard: the generated client only, nothing of the server
            { sourceTag: 'scope:web', onlyDependOnLibsWithTags: ['scope:shared'] },
            // build-host and test tools: the release tool, the virtual device, the fleet simulator
            { sourceTag: 'scope:tools', onlyDependOnLibsWithTags: ['scope:shared', 'scope:agent', 'scope:testing'] },
            // test helpers may build on each other (tools/nats takes freePort from tools/testing)
            { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: ['scope:shared', 'scope:testing'] },
          ],
        },
      ],
    },
  },
  {
    // Test fixtures (real btrfs on loop devices, build-host streams) never reach shipped code (issue 9).
    files: ['**/*.ts'],
    ignores: ['**/*.int-spec.ts', '**/*.spec.ts', '**/test/**', '**/testing/**', '**/bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: '@cowroot/device/testing', message: 'test fixtures stay out of production code' }] },
      ],
    },
  },
  {
    // The protocol is the contract both sides load: nothing heavier than class-validator.
    files: ['libs/protocol/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'typeorm', message: 'libs/protocol must not depend on typeorm' },
            { name: 'node:child_process', message: 'libs/protocol must not spawn processes' },
            { name: 'child_process', message: 'libs/protocol must not spawn processes' },
          ],
          patterns: [{ group: ['@nestjs/*'], message: 'libs/protocol must not depend on NestJS' }],
        },
      ],
    },
  },
  {
    // The generated client is shared by the CLI and the dashboard: types and openapi-fetch only, nothing of
    // the server it is generated from (the server's contract is its DTOs; see docs/api.md).
    files: ['libs/api-client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@nestjs/*', 'typeorm'], message: 'libs/api-client must not depend on the server stack' },
            { group: ['**/apps/**'], message: 'libs/api-client must not import an app' },
          ],
        },
      ],
    },
  },
  {
    // The server is the source of the OpenAPI document; it never reads its own generated client.
    files: ['apps/server/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.int-spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: '@cowroot/api-client', message: 'the server defines the contract with its DTOs' }] },
      ],
    },
  },
  {
    // Devices reach the broker only through its port (apps/server/src/broker/device-broker.ts); the broker
    // adapters in mqtt/ ingest into devices. An import from devices into mqtt would bring back the cycle.
    files: ['apps/server/src/devices/**/*.ts', 'apps/server/src/broker/**/*.ts'],
    ignores: ['**/*.spec.ts', '**/*.int-spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@cowroot/api-client', message: 'the server defines the contract with its DTOs' }],
          patterns: [
            {
              group: ['**/mqtt', '**/mqtt/**'],
              message: 'devices and the broker port must not import an adapter (mqtt/)',
            },
          ],
        },
      ],
    },
  },
  {
    // Integration tests compose the real pieces across projects (the real server's test harness beside the
    // real agent, the simulator, the CLI); boundaries bind production code, not these compositions.
    files: ['**/*.int-spec.ts', '**/*.spec.ts', '**/test/**/*.ts', '**/testing/**/*.ts', '**/bench/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  // formatting is prettier's (npm run format); no lint rule may disagree with it
  prettier,
];
