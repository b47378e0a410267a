import { EntityManager } from 'typeorm';

/**
 * Runs an UPDATE/DELETE … RETURNING and gives its rows. TypeORM's postgres driver answers those statements
 * with `[rows, affectedCount]` (and SELECT/INSERT with the rows alone), which is easy to misread.
 */
export async function returningRows<T>(manager: EntityManager, sql: string, parameters: unknown[]): Promise<T[]> {
  const result: unknown = await manager.query(sql, parameters);
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}
