import { QueryFailedError } from 'typeorm';

/**
 * SQLSTATE classes that say "this data", not "this database": data exceptions (22: out of range, NUL,
 * bad datetime, bad JSON), integrity violations (23) and program limits (54: too deep, too long).
 */
const DATA_FAULT_CLASSES = ['22', '23', '54'];

/**
 * True when a write failed because of what a message contains, so writing it again can never succeed and
 * writing it alone isolates it (docs/protocol.md §7.1 `UNSTORABLE`). False for everything that may pass on a
 * retry (connection lost, serialization failure, shutdown): those keep the message unacknowledged.
 */
export function isMessageFault(error: unknown): boolean {
  if (error instanceof QueryFailedError) {
    const code = (error.driverError as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' && DATA_FAULT_CLASSES.includes(code.slice(0, 2));
  }
  // thrown by our own code while preparing the statement from the message (JSON.stringify, conversions)
  return error instanceof RangeError || error instanceof TypeError;
}
