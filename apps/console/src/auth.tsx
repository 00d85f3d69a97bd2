import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, errorText, storeKey, storedKey } from './api/client';
import type { components } from './api/openapi';
import { restartEvents } from './events';

export type Role = components['schemas']['WhoAmIDto']['role'];
const ROLE_ORDER: Role[] = ['viewer', 'operator', 'admin'];

/** True when `have` may do what `need` may (roles are ordered, as on the hub). */
export function roleAtLeast(have: Role | undefined, need: Role): boolean {
  return have !== undefined && ROLE_ORDER.indexOf(have) >= ROLE_ORDER.indexOf(need);
}

export interface Session {
  /** undefined while asking the hub; null when nobody is signed in and anonymous reading is off. */
  who: components['schemas']['WhoAmIDto'] | null | undefined;
  error?: string;
  signIn(key: string): Promise<boolean>;
  signOut(): void;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [who, setWho] = useState<Session['who']>(undefined);
  const [error, setError] = useState<string>();

  const check = useCallback(async (): Promise<boolean> => {
    const { data, error: err, response } = await api.GET('/auth/me');
    restartEvents();
    if (data) {
      setWho(data);
      setError(undefined);
      return true;
    }
    setWho(null);
    if (response.status !== 401 || storedKey()) setError(errorText(err, response.status));
    return false;
  }, []);

  useEffect(() => {
    void check();
  }, [check]);

  const signIn = useCallback(
    async (key: string) => {
      storeKey(key.trim());
      const ok = await check();
      if (!ok) storeKey(null);
      return ok;
    },
    [check],
  );
  const signOut = useCallback(() => {
    storeKey(null);
    setError(undefined);
    void check();
  }, [check]);

  return <SessionContext.Provider value={{ who, error, signIn, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

/** Whether the signed-in principal may do what `need` may: screens hide what it may not. */
export function useCan(need: Role): boolean {
  return roleAtLeast(useSession().who?.role, need);
}

/** Renders its children only for a principal of at least `role`. */
export function IfRole({ role, children }: { role: Role; children: ReactNode }) {
  return useCan(role) ? <>{children}</> : null;
}
