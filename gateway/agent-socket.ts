/**
 * The AAMAS WebSocket protocol at /ws: a plain JSON-message socket beside GraphQL's graphql-ws at
 * /graphql, for dashboards and agents that want an agent's updates pushed and a command channel
 * without speaking GraphQL.
 *
 * Authentication, once per connection, with a bearer token (the same JWT as REST): the
 * Authorization header, `?token=<jwt>` in the URL (what a browser's WebSocket can send), or a first
 * message `{"type":"auth","token":"<jwt>"}`. A bad token in the header or URL refuses the upgrade
 * with 401; a connection that has not authenticated within AUTH_TIMEOUT_MS is closed (4401).
 *
 * Client messages, each a JSON object with a `type` (an optional `id` is echoed in the answer):
 * - `{"type":"subscribe","agent_id":"..."}` -> `subscribed`, then `{"type":"agent_update", ...}` for
 *   each of the agent's heartbeats, status changes (registered, failed, recovered, terminated) and
 *   task events of the caller's tenant, from the live feed behind the GraphQL subscriptions
 *   (gateway/live.ts). Only an agent the caller may see (gateway/visibility.ts) can be subscribed.
 * - `{"type":"unsubscribe","agent_id":"..."}` -> `unsubscribed`.
 * - `{"type":"command","command":"<name>","args":{...}}` -> `command_result` with the receipt, under
 *   the same permissions and validation as REST (gateway/commands.ts). Names: COMMAND_NAMES.
 * - `{"type":"ping"}` -> `pong`.
 * Anything wrong is answered with `{"type":"error","code","field","message"}` and the connection
 * stays open: malformed JSON, an unknown type (the message names the known ones), a refused command.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Auth, Principal } from "./auth.js";
import type { Commands, CommandReceipt } from "./commands.js";
import { GatewayError, invalid, notFound } from "./errors.js";
import type { LiveEvent, LiveFeed, LiveSubscription } from "./live.js";
import type { ReadSide } from "./read-side.js";
import { Viewer } from "./visibility.js";

export const AGENT_SOCKET_PATH = "/ws";
export const MESSAGE_TYPES = ["auth", "subscribe", "unsubscribe", "command", "ping"] as const;
/** Subscriptions one connection may hold at once. */
export const MAX_SUBSCRIPTIONS = 50;
const AUTH_TIMEOUT_MS = 30_000;

type Args = Record<string, unknown>;
/** The commands a socket forwards, each to the Commands method REST uses for it. */
const COMMANDS: Record<string, (c: Commands, p: Principal, args: Args) => Promise<CommandReceipt>> = {
  submit_goal: (c, p, a) => c.submitGoal(p, a, "GOAL"),
  submit_project: (c, p, a) => c.submitGoal(p, a, "PROJECT"),
  stop_goal: (c, p, a) => c.emergencyStop(p, a),
  phase_transition: (c, p, a) => c.requestPhaseTransition(p, a),
  scale: (c, p, a) => c.scaleAgents(p, a),
  register: (c, p, a) => c.registerAgent(p, a),
  report_result: (c, p, a) => c.reportTaskResult(p, a),
};
export const COMMAND_NAMES = Object.keys(COMMANDS);

export interface AgentSocketDeps {
  read: ReadSide;
  live: LiveFeed;
  commands: Commands;
  auth: Auth;
  path?: string;
  maxPayload?: number;
  log?: (line: string) => void;
}

export interface AgentSocket {
  /** Open connections. */
  readonly clients: number;
  /** Closes every connection and stops routing upgrades to this socket. */
  close(): Promise<void>;
}

/** The parts of an event an update shows: no envelope, JSON-safe. */
function dataOf(value: unknown): unknown {
  const { envelope: _e, ...rest } = value as { envelope?: unknown };
  return rest;
}

const json = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) =>
    typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? undefined : x,
  );

/** Whether a live event is an update about `agentId` that a caller of `tenantId` may see. */
export function isAgentUpdate(e: LiveEvent, agentId: string, tenantId: string): boolean {
  const v = e.event.value as { agentId?: string; assigneeId?: string; envelope: { tenantId: string } };
  if (e.topic === "polity.agents.events") return v.agentId === agentId;
  if (e.topic !== "polity.tasks.events" || v.envelope.tenantId !== tenantId) return false;
  return v.agentId === agentId || (e.event.type === "TaskAssigned" && v.assigneeId === agentId);
}

const kindOf = (type: string) =>
  type === "AgentHeartbeat" ? "heartbeat" : type.startsWith("Agent") ? "status" : "task";

/**
 * Mounts the socket on the gateway's HTTP server at `path`. The server's other upgrade listeners
 * (graphql-ws at /graphql) keep every other path: a ws server bound to a server and a path answers
 * upgrades of other paths with 400, so the upgrade is routed here before it reaches them.
 */
export function attachAgentSocket(server: http.Server, deps: AgentSocketDeps): AgentSocket {
  const path = deps.path ?? AGENT_SOCKET_PATH;
  const log = deps.log ?? (() => undefined);
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload ?? 256 * 1024 });
  const others = server.listeners("upgrade") as ((req: http.IncomingMessage, socket: Duplex, head: Buffer) => void)[];
  server.removeAllListeners("upgrade");

  const route = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://gateway");
    if (url.pathname !== path) {
      for (const l of others) l.call(server, req, socket, head);
      return;
    }
    const header =
      req.headers.authorization ?? (url.searchParams.get("token") ? `Bearer ${url.searchParams.get("token")}` : null);
    deps.auth.principal(header).then(
      (principal) => wss.handleUpgrade(req, socket, head, (ws) => connection(ws, principal)),
      (e: Error) => {
        socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${e.message}`);
      },
    );
  };
  server.on("upgrade", route);

  const connection = (ws: WebSocket, initial: Principal | null) => {
    let principal = initial;
    const subscriptions = new Map<string, LiveSubscription>();
    const send = (m: Record<string, unknown>) => {
      if (ws.readyState === ws.OPEN) ws.send(json(m));
    };
    const fail = (e: unknown, id: unknown) => {
      const err =
        e instanceof GatewayError
          ? e
          : new GatewayError("INTERNAL", `internal error: ${(e as Error)?.message ?? String(e)}; see the gateway log`);
      if (!(e instanceof GatewayError)) log(`agent socket: ${(e as Error)?.stack ?? String(e)}`);
      send({ type: "error", ...(id !== undefined ? { id } : {}), ...err.toJSON() });
    };
    const authTimer = principal
      ? null
      : setTimeout(() => {
          if (!principal) ws.close(4401, "authenticate first: send {type: auth, token}");
        }, AUTH_TIMEOUT_MS);
    if (principal)
      send({ type: "authenticated", role: principal.role, tenant: principal.tenantId, agent_id: principal.agentId });

    const authed = (): Principal => {
      if (!principal)
        throw new GatewayError(
          "UNAUTHENTICATED",
          'authenticate first: send {"type":"auth","token":"<jwt>"}, or connect with ?token=<jwt>',
        );
      return principal;
    };

    const agentIdOf = (m: Args): string => {
      const id = m.agent_id ?? m.agentId;
      if (typeof id !== "string" || !id) throw invalid("agent_id", "is required: the id of the agent to follow");
      return id;
    };

    const handlers: Record<(typeof MESSAGE_TYPES)[number], (m: Args) => Promise<Record<string, unknown>>> = {
      auth: async (m) => {
        if (typeof m.token !== "string" || !m.token) throw invalid("token", "is required: a bearer JWT");
        if (principal) throw invalid("token", "this connection is authenticated already");
        principal = await deps.auth.principal(`Bearer ${m.token}`);
        if (authTimer) clearTimeout(authTimer);
        return {
          type: "authenticated",
          role: principal!.role,
          tenant: principal!.tenantId,
          agent_id: principal!.agentId,
        };
      },
      subscribe: async (m) => {
        const p = authed();
        const agentId = agentIdOf(m);
        if (!subscriptions.has(agentId)) {
          if (subscriptions.size >= MAX_SUBSCRIPTIONS)
            throw invalid(
              "agent_id",
              `a connection follows at most ${MAX_SUBSCRIPTIONS} agents; unsubscribe one first`,
            );
          if (!(await new Viewer(deps.read, p).agent(agentId))) throw notFound(`agent "${agentId}"`);
          const sub = deps.live.subscribe((e) => isAgentUpdate(e, agentId, p.tenantId));
          subscriptions.set(agentId, sub);
          void (async () => {
            try {
              for await (const e of sub)
                send({
                  type: "agent_update",
                  agent_id: agentId,
                  kind: kindOf(e.event.type),
                  event: e.event.type,
                  occurred_at: (e.event.value as { envelope: { occurredAt: Date } }).envelope.occurredAt,
                  data: dataOf(e.event.value),
                });
            } catch (e) {
              fail(new GatewayError("UNAVAILABLE", (e as Error).message, "agent_id"), undefined);
            } finally {
              subscriptions.delete(agentId);
            }
          })();
        }
        return { type: "subscribed", agent_id: agentId };
      },
      unsubscribe: async (m) => {
        authed();
        const agentId = agentIdOf(m);
        await subscriptions.get(agentId)?.return();
        subscriptions.delete(agentId);
        return { type: "unsubscribed", agent_id: agentId };
      },
      command: async (m) => {
        const p = authed();
        const name = m.command;
        if (typeof name !== "string" || !COMMANDS[name])
          throw invalid("command", `must be one of ${COMMAND_NAMES.join(", ")}, got ${JSON.stringify(name ?? null)}`);
        const { type: _t, id: _i, command: _c, args, ...inline } = m;
        if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args)))
          throw invalid("args", "must be a JSON object");
        const receipt = await COMMANDS[name](deps.commands, p, (args as Args | undefined) ?? inline);
        return { type: "command_result", command: name, receipt };
      },
      ping: async () => ({ type: "pong" }),
    };

    ws.on("message", (data, isBinary) => {
      let m: unknown;
      try {
        if (isBinary) throw new Error("binary frames are not part of the protocol");
        m = JSON.parse(data.toString());
      } catch (e) {
        return fail(invalid("message", `must be a JSON object: ${(e as Error).message}`), undefined);
      }
      if (m === null || typeof m !== "object" || Array.isArray(m))
        return fail(invalid("message", "must be a JSON object with a type"), undefined);
      const msg = m as Args;
      const type = msg.type;
      const handler = typeof type === "string" ? handlers[type as keyof typeof handlers] : undefined;
      if (!handler || !Object.hasOwn(handlers, type as string))
        return fail(
          invalid("type", `must be one of ${MESSAGE_TYPES.join(", ")}, got ${JSON.stringify(type ?? null)}`),
          msg.id,
        );
      handler(msg).then(
        (answer) => send({ ...answer, ...(msg.id !== undefined ? { id: msg.id } : {}) }),
        (e) => fail(e, msg.id),
      );
    });
    ws.on("close", () => {
      if (authTimer) clearTimeout(authTimer);
      for (const sub of subscriptions.values()) void sub.return();
      subscriptions.clear();
    });
    ws.on("error", () => undefined);
  };

  return {
    get clients() {
      return wss.clients.size;
    },
    async close() {
      server.removeListener("upgrade", route);
      for (const l of others) server.on("upgrade", l);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
