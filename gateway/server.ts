/**
 * The gateway: one express app serving GraphQL (graphql-yoga, over HTTP, SSE and WebSocket via
 * graphql-ws), the REST API under /api/v1 with its OpenAPI document, and the operations endpoints
 * /health, /ready and /metrics. It reads the read models and writes only commands. With `ui` (the
 * default) it also serves the web dashboard at /ui, GraphiQL at GET /graphql (to a browser) and the
 * OpenAPI document in Swagger UI at /api-docs, all from the bundle infra/ui-build.ts writes into
 * dist/ui: nothing is loaded from elsewhere, so they work offline.
 *
 * Cross-cutting rules live here, once: body size limit, rate limit per token, bearer-token parsing,
 * and the mapping of GatewayError to HTTP statuses.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import {
  GraphQLError,
  introspectionFromSchema,
  type ExecutionArgs,
  type GraphQLSchema,
  type ValidationRule,
} from "graphql";
import { createYoga, type Plugin } from "graphql-yoga";
import { useServer } from "graphql-ws/use/ws";
import type { Kafka } from "kafkajs";
import { WebSocketServer } from "ws";
import { loadConfig, repoRoot } from "../lib/config.js";
import { registry } from "../lib/metrics.js";
import type { EventWriter } from "../producers/writer.js";
import type { Codec } from "../schemas/codec.js";
import { Auth, type Principal } from "./auth.js";
import { Commands } from "./commands.js";
import { GatewayError } from "./errors.js";
import type { GatewayContext } from "./graphql/context.js";
import { auditLog, type AuditContext } from "./graphql/goals.js";
import { limitsRule } from "./graphql/limits.js";
import { gatewaySchema } from "./graphql/schema.js";
import { HealthChecks } from "./health.js";
import { LiveFeed } from "./live.js";
import { observeRequest, registerGatewayMetrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { TenantPlans } from "./plans.js";
import { RateLimiter } from "./rate-limit.js";
import type { ReadSide } from "./read-side.js";
import { restRouter } from "./rest.js";
import { workerApiRouter } from "./worker-api.js";
import { attachAgentSocket } from "./agent-socket.js";
import { Viewer } from "./visibility.js";

export interface GatewayOptions {
  kafka: Kafka;
  codec: Codec;
  writer: EventWriter;
  read: ReadSide;
  auth: Auth;
  registryUrl: string;
  topicPrefix?: string;
  /** Largest request body accepted, in bytes (default 256 KiB). */
  maxBodyBytes?: number;
  /** Requests per second per token (or per address when anonymous), with a burst of twice that. */
  rateLimitPerSecond?: number;
  /** Per-tenant plans (gateway/plans.ts); default from POLITY_TENANT_PLANS (lib/config.ts). */
  plans?: TenantPlans;
  /**
   * Serve the dashboard (/ui), GraphiQL (GET /graphql from a browser) and the API docs page
   * (/api-docs); default true (POLITY_GATEWAY_UI=off turns them off for `npm start`).
   */
  ui?: boolean;
  /** GraphiQL alone; defaults to `ui`. */
  graphiql?: boolean;
  /** Where the built dashboard is (default dist/ui in the repository). */
  uiDir?: string;
  /** Read-model lag above which /ready says not ready. */
  maxReadyLag?: number;
  projectionWaitMs?: number;
  log?: (line: string) => void;
}

export interface Gateway {
  app: express.Express;
  server: http.Server;
  live: LiveFeed;
  health: HealthChecks;
  commands: Commands;
  /** Listens on `host` (default 127.0.0.1); port 0 picks a free one. Resolves with the base URL. */
  listen(port: number, host?: string): Promise<string>;
  stop(): Promise<void>;
}

declare module "express-serve-static-core" {
  interface Request {
    principal?: Principal | null;
  }
}

/** The JSON error body every REST error and every non-GraphQL failure uses. */
export function sendError(res: Response, e: unknown): void {
  const err =
    e instanceof GatewayError
      ? e
      : new GatewayError("INTERNAL", `internal error: ${(e as Error)?.message ?? String(e)}; see the gateway log`);
  if (err.code === "RATE_LIMITED") res.setHeader("Retry-After", "1");
  res.status(err.status).json({ error: err.toJSON() });
}

/**
 * Request errors (unparsable query, unknown field, missing argument, limits) answer 400 whatever
 * the Accept header: yoga marks them `http.spec`, which keeps 200 for application/json clients;
 * clients of a typed API are better served by the 4xx.
 */
const requestErrorsAre4xx: Plugin = {
  onResultProcess({ result, setResult }) {
    if (Array.isArray(result) || !result || typeof result !== "object" || !("errors" in result)) return;
    const errors = (result as { errors?: readonly GraphQLError[] }).errors;
    if (!errors?.some((e) => (e.extensions?.http as { spec?: boolean } | undefined)?.spec)) return;
    setResult({
      ...result,
      errors: errors.map((e) => {
        const http = e.extensions?.http as { spec?: boolean; status?: number } | undefined;
        if (!http?.spec) return e;
        return new GraphQLError(e.message, {
          nodes: e.nodes,
          path: e.path,
          extensions: {
            ...e.extensions,
            code: e.extensions?.code === "GRAPHQL_VALIDATION_FAILED" ? "INVALID_INPUT" : e.extensions?.code,
            http: { status: http.status ?? 400 },
          },
        });
      }),
    } as typeof result);
  },
};

export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.log ?? (() => undefined);
  const { read, auth } = options;
  const plans = options.plans ?? TenantPlans.parse(loadConfig().tenantPlans);
  const commands = new Commands(options.writer, read, options.projectionWaitMs, plans);
  const live = new LiveFeed(options.kafka, options.codec, options.topicPrefix ?? "", undefined, log);
  const health = new HealthChecks(options.kafka, options.registryUrl, read, {
    topicPrefix: options.topicPrefix,
    maxLag: options.maxReadyLag,
  });
  const limiter = new RateLimiter(options.rateLimitPerSecond ?? 100);
  const maxBody = options.maxBodyBytes ?? 256 * 1024;
  registerGatewayMetrics({ read, live });

  const context = (principal: Principal | null): GatewayContext => {
    let loaders: ReturnType<ReadSide["loaders"]> | undefined;
    let viewer: Viewer | undefined;
    const ctx: AuditContext = {
      principal,
      read,
      writer: options.writer,
      live,
      commands,
      health,
      projectionWaitMs: options.projectionWaitMs ?? 10_000,
      loaders: () => (loaders ??= read.loaders(principal?.tenantId ?? "")),
      viewer: () => {
        if (!principal) throw new GatewayError("UNAUTHENTICATED", "no valid bearer token");
        return (viewer ??= new Viewer(read, principal, ctx.loaders()));
      },
      subtree: () => (principal ? ctx.viewer().subtree() : Promise.resolve(new Set<string>())),
      // The log read back for audit (auditTrail, asOf); what it reads is cached for the request.
      audit: auditLog({ kafka: options.kafka, codec: options.codec, topicPrefix: options.topicPrefix }),
    };
    return ctx;
  };

  const principalOf = async (header: string | undefined | null): Promise<Principal | null> => {
    try {
      return await auth.principal(header);
    } catch (e) {
      if (e instanceof GatewayError)
        throw new GraphQLError(e.message, { extensions: { code: e.code, http: { status: e.status } } });
      throw e;
    }
  };

  const ui = options.ui ?? true;
  const uiDir = options.uiDir ?? path.join(repoRoot, "dist", "ui");
  const schema = gatewaySchema();
  const yoga = createYoga<object, GatewayContext>({
    schema,
    graphqlEndpoint: "/graphql",
    graphiql: options.graphiql ?? ui,
    // The locally bundled GraphiQL (yoga's own loads its assets from a CDN).
    renderGraphiQL: () => uiPage(uiDir, "graphiql.html"),
    landingPage: false,
    maskedErrors: { maskError: (e, message) => maskError(e, message, log) },
    plugins: [
      requestErrorsAre4xx,
      {
        onValidate: ({ addValidationRule }: { addValidationRule: (rule: ValidationRule) => void }) =>
          addValidationRule(limitsRule()),
      },
    ],
    context: async ({ request }) => context(await principalOf(request.headers.get("authorization"))),
    logging: false,
  });

  const app = express();
  app.disable("x-powered-by");
  app.use((req, res, next) => observeRequest(req, res, next));

  app.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/ready", async (_req, res) => {
    const report = await health.report();
    res.status(report.ready ? 200 : 503).json(report);
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  // The REST API's description is public, like the operations endpoints (also at /api/v1/openapi.json).
  app.get("/openapi.json", (_req, res) => {
    res.json(openApiDocument());
  });

  if (ui) app.use(uiRouter(uiDir, schema));

  // Everything below is an API call: size-limited, authenticated if a token is sent, rate-limited.
  app.use((req, res, next) => {
    const length = Number(req.headers["content-length"] ?? 0);
    if (length > maxBody)
      return sendError(
        res,
        new GatewayError("PAYLOAD_TOO_LARGE", `request body is ${length} bytes; the limit is ${maxBody}`),
      );
    next();
  });
  app.use(async (req, res, next) => {
    try {
      req.principal = await auth.principal(req.headers.authorization);
    } catch (e) {
      return sendError(res, e);
    }
    const key = req.principal ? `token:${req.principal.subject}:${req.principal.tenantId}` : `ip:${req.ip}`;
    if (!limiter.take(key))
      return sendError(
        res,
        new GatewayError(
          "RATE_LIMITED",
          `more than ${limiter.perSecond} requests per second from this token; slow down`,
        ),
      );
    // And per tenant, at its plan's rate: every token of a tenant shares one bucket.
    if (req.principal) {
      const { tenantId } = req.principal;
      const plan = plans.of(tenantId);
      if (!limiter.take(`tenant:${tenantId}`, Date.now(), plan.requestsPerSecond))
        return sendError(
          res,
          new GatewayError(
            "RATE_LIMITED",
            `tenant ${tenantId} is over its plan's requestsPerSecond (${plan.requestsPerSecond}, plan ${plan.plan}); slow down`,
          ),
        );
    }
    next();
  });
  // REST bodies are parsed here; GraphQL reads its own (yoga answers malformed JSON with 400).
  app.use("/api/v1", express.json({ limit: maxBody }), workerApiRouter({ read, writer: options.writer, live }));
  app.use("/api/v1", express.json({ limit: maxBody }), restRouter({ read, commands, health }));
  app.use(yoga.graphqlEndpoint, yoga);
  app.use((_req, res) => {
    sendError(res, new GatewayError("NOT_FOUND", "no such route; see /openapi.json and /graphql"));
  });
  // Body parser failures (malformed JSON, too large) and anything thrown by a handler.
  app.use((e: Error & { type?: string; status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    if (e.type === "entity.parse.failed")
      return sendError(res, new GatewayError("INVALID_INPUT", `malformed JSON body: ${e.message}`, "body"));
    if (e.type === "entity.too.large")
      return sendError(
        res,
        new GatewayError("PAYLOAD_TOO_LARGE", `request body is over the limit of ${maxBody} bytes`),
      );
    if (!(e instanceof GatewayError)) log(`gateway: ${e.stack ?? e.message}`);
    sendError(res, e);
  });

  const server = http.createServer(app);
  const wss = new WebSocketServer({ server, path: "/graphql", maxPayload: maxBody });
  const ws = useServer(
    {
      // Run through yoga's envelop pipeline (context, plugins), as onSubscribe prepared it.
      execute: (args: ExecutionArgs) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args: ExecutionArgs) => (args.rootValue as Enveloped).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const connection = ctx.connectionParams as { authorization?: string; Authorization?: string } | undefined;
        const header =
          connection?.authorization ??
          connection?.Authorization ??
          (ctx.extra.request.headers.authorization as string | undefined);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          request: { headers: new Headers(header ? { authorization: header } : {}) },
        });
        // A syntax error or a rejected token is this operation's error: thrown, graphql-ws would
        // close the whole connection with 4500 "internal error".
        try {
          const args = {
            schema,
            operationName: params.operationName,
            document: parse(params.query),
            variableValues: params.variables,
            contextValue: await contextFactory(),
            rootValue: { execute, subscribe },
          };
          const errors = validate(args.schema, args.document);
          if (errors.length) return errors;
          return args;
        } catch (e) {
          if (e instanceof GraphQLError) return [e];
          throw e;
        }
      },
    },
    wss,
  );
  const agentSocket = attachAgentSocket(server, { read, live, commands, auth, maxPayload: maxBody, log });

  let started = false;
  return {
    app,
    server,
    live,
    health,
    commands,
    async listen(port: number, host = "127.0.0.1"): Promise<string> {
      if (!started) {
        await live.start();
        started = true;
      }
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) =>
          reject(
            new Error(
              e.code === "EADDRINUSE" ? `port ${port} is in use; set POLITY_GATEWAY_PORT to a free port` : e.message,
            ),
          ),
        );
        server.listen(port, host, resolve);
      });
      // A wildcard address is reached locally on loopback; an IPv6 literal goes in brackets.
      const reach = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
      const url = `http://${reach.includes(":") ? `[${reach}]` : reach}:${(server.address() as AddressInfo).port}`;
      log(
        `gateway at ${url} (GraphQL ${url}/graphql, REST ${url}/api/v1, OpenAPI ${url}/openapi.json` +
          (ui ? `, dashboard ${url}/ui, API docs ${url}/api-docs)` : ")"),
      );
      return url;
    },
    async stop(): Promise<void> {
      await agentSocket.close();
      await ws.dispose();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await live.stop();
      await health.stop();
    },
  };
}

const NOT_BUILT = (file: string) => `<!doctype html><meta charset="utf-8"><title>Polity: dashboard not built</title>
<body style="font:15px system-ui,sans-serif;max-width:640px;margin:60px auto">
<h1>The dashboard is not built</h1>
<p>This gateway serves the web dashboard from <code>dist/ui</code>, which has no <code>${file}</code>.
<code>npm start</code> builds it when it is missing or stale; <code>npm run ui:build</code> builds it by hand.</p>
<p>The APIs work without it: <code>POST /graphql</code>, <code>/api/v1</code>, <code>/openapi.json</code>.</p></body>`;

/** A page of the built dashboard, read at each request so that a rebuild shows without a restart. */
function uiPage(dir: string, file: string): string {
  try {
    return fs.readFileSync(path.join(dir, file), "utf8");
  } catch {
    return NOT_BUILT(file);
  }
}

/**
 * /ui (the dashboard: index.html and hashed assets), /api-docs (Swagger UI), / sent to /ui, and the
 * schema's introspection for GraphiQL at /ui/schema.json (GraphiQL's own introspection query is
 * deeper than the depth limit lets through).
 */
function uiRouter(dir: string, schema: GraphQLSchema): express.Router {
  const router = express.Router();
  let introspection: unknown;
  router.get("/ui/schema.json", (_req, res) => {
    res.setHeader("Cache-Control", "no-cache").json((introspection ??= introspectionFromSchema(schema)));
  });
  const page = (file: string) => (_req: Request, res: Response) => {
    const html = uiPage(dir, file);
    res
      .status(html.includes("dashboard is not built") ? 503 : 200)
      .type("html")
      .setHeader("Cache-Control", "no-cache")
      .send(html);
  };
  router.get("/", (_req, res) => res.redirect(302, "/ui"));
  router.get(["/ui", "/ui/", "/ui/index.html"], page("index.html"));
  router.get(["/api-docs", "/api-docs/"], page(path.join("api-docs", "index.html")));
  // Asset names carry a hash of their content: they may be kept for ever.
  router.use("/ui/assets", express.static(path.join(dir, "assets"), { immutable: true, maxAge: "365d", index: false }));
  router.use("/ui", express.static(dir, { maxAge: "1h", index: false }));
  return router;
}

type Enveloped = {
  execute: (args: ExecutionArgs) => ReturnType<typeof import("graphql").execute>;
  subscribe: (args: ExecutionArgs) => ReturnType<typeof import("graphql").subscribe>;
};

/** Coded errors pass through; anything else is logged and shown as INTERNAL without internals. */
function maskError(e: unknown, message: string, log: (line: string) => void): Error {
  const original = e instanceof GraphQLError ? (e.originalError ?? e) : e;
  if (e instanceof GraphQLError && (e.extensions?.code || !e.originalError)) return e;
  if (original instanceof GatewayError)
    return new GraphQLError(original.message, {
      extensions: { code: original.code, field: original.field, http: { status: original.status } },
    });
  log(`gateway: ${(original as Error)?.stack ?? String(original)}`);
  return new GraphQLError(message, { extensions: { code: "INTERNAL", http: { status: 500 } } });
}
