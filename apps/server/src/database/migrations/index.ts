import { Core1764100000000 } from './1764100000000-core';

/** Every migration, oldest first. TypeORM runs those not yet recorded in the `migrations` table. */
export const MIGRATIONS = [
  Core1764100000000,
];
