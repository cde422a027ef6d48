/**
 * The dashboard's only way to the platform: GraphQL over HTTP (POST /graphql) for reads and
 * commands, and the GraphQL subscriptions over WebSocket (graphql-ws) for what changes live. The
 * token goes in the Authorization header (HTTP) and in the connection parameters (WebSocket), so the
 * gateway filters by tenant exactly as it does for any API client.
 */
import { createClient, type Client } from "graphql-ws";

export interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string; field?: string };
}

/** A refused or failed call, with the API's own message and code. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    message: string,
    readonly code: string,
    readonly status = 0,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const graphqlUrl = () => `${location.origin}/graphql`;
export const websocketUrl = () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;

const prefetched = new Map<string, Promise<Response>>();

/**
 * Sends a read before the page asks for it (the overview's, while the token is being checked);
 * the first identical read within a few seconds takes its answer instead of asking again.
 */
export function prefetch(token: string, query: string, variables: Record<string, unknown> = {}): void {
  const key = JSON.stringify([token, query, variables]);
  const request = post(token, query, variables);
  request.catch(() => undefined);
  prefetched.set(key, request);
  setTimeout(() => prefetched.delete(key), 5_000);
}

function post(token: string, query: string, variables: Record<string, unknown>): Promise<Response> {
  return fetch(graphqlUrl(), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
}

/**
 * A query's answer: its data, and the first error when there was one. GraphQL answers in part when
 * one field fails (that field null, the rest there), so a page can show what it got and the error.
 */
export async function gqlPartial<T>(
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<{ data: T; error: ApiError | null }> {
  let res: Response;
  const key = JSON.stringify([token, query, variables]);
  const early = prefetched.get(key);
  prefetched.delete(key);
  try {
    res = await (early ?? post(token, query, variables));
  } catch (e) {
    throw new ApiError(`the gateway at ${location.origin} does not answer (${(e as Error).message})`, "UNREACHABLE");
  }
  let body: { data?: T | null; errors?: GraphQLErrorBody[]; error?: { code?: string; message?: string } };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    throw new ApiError(`the gateway answered ${res.status} without a GraphQL body`, "INTERNAL", res.status);
  }
  // Refused before GraphQL (a bad token, the rate limit): the gateway's JSON error body.
  if (body.error?.message) throw new ApiError(body.error.message, body.error.code ?? "ERROR", res.status);
  const first = body.errors?.[0];
  const error = first
    ? new ApiError(
        first.message + (body.errors!.length > 1 ? ` (and ${body.errors!.length - 1} more)` : ""),
        first.extensions?.code ?? (res.status === 401 ? "UNAUTHENTICATED" : "ERROR"),
        res.status,
        first.extensions?.field,
      )
    : null;
  if (!body.data)
    throw error ?? new ApiError(`the gateway answered ${res.status} with no data`, "INTERNAL", res.status);
  return { data: body.data, error };
}

/** A query or command that must succeed whole: the API's first error is thrown. */
export async function gql<T>(token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const { data, error } = await gqlPartial<T>(token, query, variables);
  if (error) throw error;
  return data;
}

/** The live connection's state, as the header shows it. */
export interface LiveStatus {
  state: "connecting" | "live" | "reconnecting";
  /** Times the connection was lost and made again. */
  reconnects: number;
  lastReconnectAt: Date | null;
  lastError: string | null;
}

export interface Live {
  client: Client;
  status(): LiveStatus;
  /** Called on every change of status; returns the unsubscribe function. */
  onStatus(listener: (s: LiveStatus) => void): () => void;
  /** Called each time the connection is made again after a loss (to read what was missed). */
  onReconnected(listener: () => void): () => void;
  /** Closes the connection as if the network dropped it (for the "reconnects" check and by hand). */
  drop(): void;
  dispose(): void;
}

export interface LiveEventMessage {
  type: string;
  goalId: string | null;
  taskId: string | null;
  agentId: string | null;
  occurredAt: string;
  loggedAt: string;
  topic: string;
  offset: string;
  replayed: boolean;
  payload: Record<string, unknown>;
}

/** One graphql-ws connection for the session: retried for ever, with a status the page shows. */
export function connectLive(token: string): Live {
  let status: LiveStatus = { state: "connecting", reconnects: 0, lastReconnectAt: null, lastError: null };
  const statusListeners = new Set<(s: LiveStatus) => void>();
  const reconnectListeners = new Set<() => void>();
  let everConnected = false;
  let socket: WebSocket | null = null;
  const set = (next: Partial<LiveStatus>) => {
    status = { ...status, ...next };
    for (const l of statusListeners) l(status);
  };
  const client = createClient({
    url: websocketUrl(),
    connectionParams: () => ({ authorization: `Bearer ${token}` }),
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.MAX_SAFE_INTEGER,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** retries)));
    },
    on: {
      opened: (s) => {
        socket = s as WebSocket;
      },
      connected: () => {
        if (everConnected) {
          set({ state: "live", reconnects: status.reconnects + 1, lastReconnectAt: new Date(), lastError: null });
          for (const l of reconnectListeners) l();
        } else set({ state: "live", lastError: null });
        everConnected = true;
      },
      closed: (e) => {
        socket = null;
        const event = e as CloseEvent | undefined;
        set({
          state: everConnected ? "reconnecting" : "connecting",
          lastError: event?.code ? `connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""})` : null,
        });
      },
      error: (e) => set({ lastError: (e as Error)?.message ?? "connection error" }),
    },
  });
  return {
    client,
    status: () => status,
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    onReconnected(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    drop() {
      // 4499 is no graphql-ws code: the client treats it as a lost connection and retries.
      socket?.close(4499, "dropped");
    },
    dispose() {
      statusListeners.clear();
      reconnectListeners.clear();
      void client.dispose();
    },
  };
}

/**
 * Subscribes to one subscription field; `onEvent` gets each LiveEvent. Returns the unsubscribe
 * function. graphql-ws subscribes again by itself after a reconnection.
 */
export function subscribe(
  live: Live,
  query: string,
  variables: Record<string, unknown>,
  handlers: {
    onEvent: (e: LiveEventMessage) => void;
    onError?: (e: ApiError) => void;
    onComplete?: () => void;
  },
): () => void {
  return live.client.subscribe<Record<string, LiveEventMessage>>(
    { query, variables },
    {
      next: (r) => {
        if (r.errors?.length) {
          const first = r.errors[0] as GraphQLErrorBody;
          handlers.onError?.(new ApiError(first.message, first.extensions?.code ?? "ERROR"));
          return;
        }
        const value = r.data ? Object.values(r.data)[0] : undefined;
        if (value) handlers.onEvent(value);
      },
      error: (e) => {
        const list = Array.isArray(e) ? (e as GraphQLErrorBody[]) : null;
        handlers.onError?.(
          list?.[0]
            ? new ApiError(list[0].message, list[0].extensions?.code ?? "ERROR")
            : new ApiError((e as Error)?.message ?? "subscription failed", "ERROR"),
        );
      },
      complete: () => handlers.onComplete?.(),
    },
  );
}
