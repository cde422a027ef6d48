/**
 * The REST API under /api/v1: the endpoints both source designs list, on the same read side and
 * command paths as GraphQL (gateway/read-side.ts, gateway/commands.ts), so both refuse and answer alike.
 */
import express, { type Request, type Response } from "express";
import type { Commands } from "./commands.js";
import { require } from "./auth.js";
import { notFound } from "./errors.js";
import type { HealthChecks } from "./health.js";
import type { ReadSide } from "./read-side.js";
import { sendError } from "./server.js";

export interface RestDeps {
  read: ReadSide;
  commands: Commands;
  health: HealthChecks;
}

type Handler = (req: Request, res: Response) => Promise<unknown>;

/** Runs a handler; a GatewayError becomes its status and JSON error body. */
const handle =
  (h: Handler) =>
  (req: Request, res: Response): void => {
    h(req, res).then(
      (body) => {
        if (!res.headersSent) res.json(body);
      },
      (e) => sendError(res, e),
    );
  };

const wait = (req: Request) => ({ waitForProjection: req.query.wait === "true" || req.query.wait === "1" });

export function restRouter(deps: RestDeps): express.Router {
  const { read, commands } = deps;
  const router = express.Router();

  router.post(
    "/goals",
    handle(async (req, res) => {
      res.status(202);
      return commands.submitGoal(req.principal ?? null, req.body, "GOAL", wait(req));
    }),
  );
  router.get(
    "/goals/:id",
    handle(async (req) => {
      const p = require(req.principal ?? null, "read");
      const goal = await read.goal(p.tenantId, String(req.params.id));
      if (!goal) throw notFound(`goal "${req.params.id}"`);
      return { ...goal, tasks: await read.tasksOf(p.tenantId, goal._id) };
    }),
  );

  return router;
}
