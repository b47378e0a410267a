// @cowroot/device/testing: fixtures for the integration tests and benches of the agent, the release tool
// and the boot chain (real btrfs on a loop device, build-host streams). Kept out of the production
// barrel (../index.ts) so that nothing shipped can import a test fixture.
export * from './loop-btrfs';
export * from './release-builder';
export * from './repeatable-bytes';
