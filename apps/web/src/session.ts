import { createContext, useContext } from 'react';
import type { Schemas } from '@cowroot/api-client';

export type Session = Schemas['SessionDto'];

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a logged-in page');
  return session;
}
