import { Role } from './role.enum';

/** Who did something: named in every audit entry. */
export interface Actor {
  type: 'operator' | 'device' | 'system';
  id: string;
  name: string;
  role?: Role;
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: 'server', name: 'cowroot server' };

export function deviceActor(deviceId: string): Actor {
  return { type: 'device', id: deviceId, name: deviceId };
}
