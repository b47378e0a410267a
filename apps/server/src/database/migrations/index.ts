import { Core1764100000000 } from './1764100000000-core';
import { Releases1764200000000 } from './1764200000000-releases';

/** Every migration, oldest first. TypeORM runs those not yet recorded in the `migrations` table. */
export const MIGRATIONS = [
  Core1764100000000,
  Releases1764200000000,
];
