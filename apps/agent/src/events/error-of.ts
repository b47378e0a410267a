import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '@cowroot/device';

const MESSAGE_MAX = 2048;

/** True for the errors of a full filesystem (journal, state files, spool). */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The protocol error code and a bounded message for any error (docs/protocol.md §7). */
export function errorOf(error: unknown): { code: ErrorCode; message: string } {
  const message = (error instanceof Error ? error.message : String(error)).slice(0, MESSAGE_MAX);
  if (error instanceof DeviceError) return { code: error.code, message };
  if (isDiskFull(error)) return { code: ErrorCode.DiskFull, message };
  return { code: ErrorCode.Internal, message };
}
