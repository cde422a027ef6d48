/**
 * The signed-in session (token, who the gateway says we are, the live connection) and the hooks
 * pages use to read through GraphQL and follow subscriptions.
 */
import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import { ApiError, gql, gqlPartial, subscribe, type Live, type LiveEventMessage, type LiveStatus } from "./api";

export interface Me {
  subject: string;
  role: string;
  tenantId: string;
  agentId: string | null;
}

export interface Session {
  token: string;
  me: Me;
  live: Live;
  /** Back to the sign-in page, showing `why` (an expired token, say). */
  signOut(why?: ApiError): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("no session");
  return s;
}

const TOKEN_KEY = "polity.token";

export function storedToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // private mode: the token lives for this page only
  }
}

/** The token the page will sign in with (from the link or kept), without taking it out of the link. */
export function peekToken(): string | null {
  const m = /^#token=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]!) : storedToken();
}

/** A token handed in the link (`/ui#token=...`, as `npm run token` prints it), taken out of the address. */
export function tokenFromLink(): string | null {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", `${location.pathname}#/`);
  return decodeURIComponent(m[1]!);
}

export async function whoAmI(token: string): Promise<Me> {
  const data = await gql<{ me: Me }>(token, "query Me { me { subject role tenantId agentId } }");
  return data.me;
}

export interface Query<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  /** Reads again (keeps showing the last answer meanwhile). */
  reload(): void;
  /** Reads again unless a read is under way (for reads triggered by events). */
  refresh(): void;
}

/**
 * Runs a GraphQL query now and when `deps` change, again on `reload()`, on every reconnection of
 * the live connection (what was missed while it was down), and every `pollMs` when given.
 */
export function useQuery<T>(
  query: string,
  variables: Record<string, unknown> = {},
  options: { pollMs?: number; skip?: boolean; retryWhile?: (data: T) => boolean } = {},
): Query<T> {
  const session = useSession();
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: !options.skip,
  });
  const key = JSON.stringify(variables);
  const seq = useRef(0);
  const retryWhile = useRef(options.retryWhile);
  retryWhile.current = options.retryWhile;
  const retries = useRef(0);
  const inFlight = useRef(false);
  const run = useCallback(() => {
    if (options.skip) return;
    const mine = ++seq.current;
    inFlight.current = true;
    setState((s) => ({ ...s, loading: true }));
    gqlPartial<T>(session.token, query, JSON.parse(key) as Record<string, unknown>).then(
      ({ data, error }) => {
        if (mine !== seq.current) return;
        inFlight.current = false;
        setState({ data, error, loading: false });
        // Read again shortly while the answer is not there yet (a goal just submitted), ten times at most.
        if (retryWhile.current?.(data) && retries.current++ < 10)
          setTimeout(() => mine === seq.current && run(), 1_000);
        else retries.current = 0;
      },
      (e: unknown) => {
        if (mine !== seq.current) return;
        inFlight.current = false;
        const error = e instanceof ApiError ? e : new ApiError(String(e), "ERROR");
        // The token expired (or the secret changed) while signed in.
        if (error.code === "UNAUTHENTICATED") return session.signOut(error);
        setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
  }, [session, query, key, options.skip]);
  // A poll, an event or a reconnection does not cut short a read still under way (a slow one would never end).
  const again = useCallback(() => {
    if (!inFlight.current) run();
  }, [run]);
  useEffect(() => {
    run();
    const off = session.live.onReconnected(again);
    const timer = options.pollMs ? setInterval(again, options.pollMs) : undefined;
    return () => {
      off();
      if (timer) clearInterval(timer);
    };
  }, [run, again, session.live, options.pollMs]);
  return { ...state, reload: run, refresh: again };
}

/** Follows a subscription while the component is shown. */
export function useSubscription(
  query: string,
  variables: Record<string, unknown>,
  onEvent: (e: LiveEventMessage) => void,
  options: { skip?: boolean; onError?: (e: ApiError) => void; onComplete?: () => void } = {},
): void {
  const session = useSession();
  const handlers = useRef({ onEvent, onError: options.onError, onComplete: options.onComplete });
  handlers.current = { onEvent, onError: options.onError, onComplete: options.onComplete };
  const key = JSON.stringify(variables);
  useEffect(() => {
    if (options.skip) return;
    return subscribe(session.live, query, JSON.parse(key) as Record<string, unknown>, {
      onEvent: (e) => handlers.current.onEvent(e),
      onError: (e) => handlers.current.onError?.(e),
      onComplete: () => handlers.current.onComplete?.(),
    });
  }, [session.live, query, key, options.skip]);
}

/** Calls `fn` at most once per `ms` (the last call wins), for reads triggered by bursts of events. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  }, [ms]);
}

export function useLiveStatus(): LiveStatus {
  const { live } = useSession();
  const [status, setStatus] = useState(live.status());
  useEffect(() => {
    setStatus(live.status());
    return live.onStatus(setStatus);
  }, [live]);
  return status;
}

/** Re-renders every `ms` (heartbeat ages and the like). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
