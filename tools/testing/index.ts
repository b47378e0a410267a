// @cowroot/testing: the test helpers every project may use (CONVENTIONS.md §7, §8).
export * from './privileged';
export * from './free-port';
