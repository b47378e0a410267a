export * from './switch-protocol';
export * from './device-error';
