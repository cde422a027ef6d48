/**
 * What every resolver gets: the caller (null when anonymous), the read side with per-request
 * loaders, the command writer, and the live feed for subscriptions.
 */
import { GraphQLError } from "graphql";
import type { EventWriter } from "../../producers/writer.js";
import type { Principal, Action } from "../auth.js";
import { require as requireRole } from "../auth.js";
import { GatewayError } from "../errors.js";
import type { LiveFeed } from "../live.js";
import type { Commands } from "../commands.js";
import type { HealthChecks } from "../health.js";
import type { Viewer } from "../visibility.js";
import type { Loaders, ReadSide } from "../read-side.js";

export interface GatewayContext {
  principal: Principal | null;
  read: ReadSide;
  /** Created on first use, for the caller's tenant. */
  loaders(): Loaders;
  writer: EventWriter;
  live: LiveFeed;
  commands: Commands;
  health: HealthChecks;
  /** For an agent token: its agent and every agent below it (cached per request); empty otherwise. */
  subtree(): Promise<Set<string>>;
  /** The visibility rules for the caller (gateway/visibility.ts); requires a caller. */
  viewer(): Viewer;
  /** How long a mutation with waitForProjection waits for its effect in the read model. */
  projectionWaitMs: number;
}

/** The caller, if allowed to do `action`; a coded GraphQL error otherwise. */
export function caller(ctx: GatewayContext, action: Action): Principal {
  try {
    return requireRole(ctx.principal, action);
  } catch (e) {
    throw toGraphQLError(e);
  }
}

/** A GatewayError as a GraphQL error whose extensions carry the code, field and HTTP status. */
export function toGraphQLError(e: unknown): GraphQLError | unknown {
  if (e instanceof GatewayError) {
    return new GraphQLError(e.message, {
      extensions: { code: e.code, ...(e.field ? { field: e.field } : {}), http: { status: e.status } },
    });
  }
  return e;
}

/** Runs a resolver body, turning a GatewayError into a coded GraphQL error. */
export async function guarded<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    throw toGraphQLError(e);
  }
}

/** Per-request results of shared resolvers, by context (a context lives for one request). */
const memos = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * `compute()` once per request and key: every alias of a field (and every other field asking the
 * same) shares the first call's answer, so aliasing a costly resolver does not multiply its work.
 */
export function once<T>(ctx: GatewayContext, key: string, compute: () => Promise<T>): Promise<T> {
  let memo = memos.get(ctx);
  if (!memo) memos.set(ctx, (memo = new Map()));
  let result = memo.get(key) as Promise<T> | undefined;
  if (!result) memo.set(key, (result = compute()));
  return result;
}
