// One Jest run over every project. Unit tests are *.spec.ts, integration tests *.int-spec.ts.
// ts-jest transpiles only (type checking is `npm run lint`), which keeps the suite fast.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/tools', '<rootDir>/deploy', '<rootDir>/bench'],
  testMatch: ['**/*.spec.ts', '**/*.int-spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
  moduleNameMapper: {
    '^@cowroot/protocol$': '<rootDir>/libs/protocol/src/index.ts',
    '^@cowroot/device$': '<rootDir>/libs/device/src/index.ts',
    '^@cowroot/api-client$': '<rootDir>/libs/api-client/src/index.ts',
    '^@cowroot/device/testing$': '<rootDir>/libs/device/src/testing/index.ts',
    '^@cowroot/testing$': '<rootDir>/tools/testing/privileged.ts',
    '^@cowroot/testing/free-port$': '<rootDir>/tools/testing/free-port.ts',
    '^@cowroot/testing/seeded-random$': '<rootDir>/tools/testing/seeded-random.ts',
  },
  testTimeout: 60000,
};
