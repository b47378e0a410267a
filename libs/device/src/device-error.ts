import { ErrorCode } from '@cowroot/protocol';

/**
 * A failure of the device core with a protocol error code (libs/protocol error-codes.ts), so the agent can
 * put `code` straight into a `failed` job event and `message` into its text.
 */
export class DeviceError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DeviceError';
  }
}

export function isDeviceError(error: unknown, code?: ErrorCode): error is DeviceError {
  return error instanceof DeviceError && (code === undefined || error.code === code);
}
