import { Actor } from '../auth/actor';

/** Who the audit log names for what the rollout engine decides on its own (waves, aborts, timeouts). */
export const ROLLOUT_ENGINE_ACTOR: Actor = { type: 'system', id: 'rollout-engine', name: 'rollout engine' };
