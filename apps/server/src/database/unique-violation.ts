import { QueryFailedError } from 'typeorm';

/** True when a query failed on a UNIQUE constraint (PostgreSQL SQLSTATE 23505), optionally a given one. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string; constraint?: string };
  return driverError.code === '23505' && (constraint === undefined || driverError.constraint === constraint);
}
