export * from './crc32c';
export * from './send-stream';
export * from './delta-format';
export * from './byte-reader';
export * from './streaming-command';
export * from './predecessor';
export * from './delta-reconstructor';
export * from './write-run';
