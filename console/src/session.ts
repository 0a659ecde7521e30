import { createContext, useContext } from 'react';
import type { Schemas } from './api/client';

export interface Session {
  me: Schemas['Caller'] | null;
  refresh: () => Promise<void>;
  setMe: (m: Schemas['Caller'] | null) => void;
}

export const SessionContext = createContext<Session>({
  me: null,
  refresh: async () => {},
  setMe: () => {},
});

export function useSession(): Session {
  return useContext(SessionContext);
}
