export * from './switch-protocol';
export * from './device-error';
export * from './command-runner';
export * from './btrfs-output.parser';
export * from './btrfs.adapter';
export * from './uboot-env.adapter';
export * from './file-backed-env';
export * from './atomic-file';
export * from './snapshot-store';
export * from './boot-context';
export * from './switch.service';
export * from './garbage-collector';
export * from './young-garbage';
// test fixtures are @cowroot/device/testing (./testing/index.ts), never part of this barrel
// delta artifacts: the stream format shared with the release tool, and the device's reconstruction
export * from './delta';
