import { Core1764100000000 } from './1764100000000-core';
import { Devices1764100000100 } from './1764100000100-devices';
import { Releases1764200000000 } from './1764200000000-releases';
import { Rollouts1764300000000 } from './1764300000000-rollouts';
import { RolloutInFlightIndex1764600000000 } from './1764600000000-rollout-in-flight-index';
import { DeltaArtifacts1764450000000 } from './1764450000000-delta-artifacts';
import { BrokerKeys1764700000000 } from './1764700000000-broker-keys';
import { Dashboard1764800000000 } from './1764800000000-dashboard';
import { DeltaFormats1764900000000 } from './1764900000000-delta-formats';
import { DevicesFillfactor1765000000000 } from './1765000000000-devices-fillfactor';

/** Every migration, oldest first. TypeORM runs those not yet recorded in the `migrations` table. */
export const MIGRATIONS = [
  Core1764100000000,
  Devices1764100000100,
  Releases1764200000000,
  Rollouts1764300000000,
  RolloutInFlightIndex1764600000000,
  DeltaArtifacts1764450000000,
  BrokerKeys1764700000000,
  Dashboard1764800000000,
  DeltaFormats1764900000000,
  DevicesFillfactor1765000000000,
];
