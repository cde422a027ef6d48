/** The gateway's GraphQL schema, assembled from one module per area. */
import { createSchema } from "graphql-yoga";
import * as agents from "./agents.js";
import * as analytics from "./analytics.js";
import * as common from "./common.js";
import * as deadletters from "./deadletters.js";
import type { GatewayContext } from "./context.js";
import * as goals from "./goals.js";
import * as governance from "./governance.js";
import * as health from "./health.js";
import * as subscriptions from "./subscriptions.js";
import * as tasks from "./tasks.js";

const AREAS = [common, goals, tasks, agents, governance, health, analytics, deadletters, subscriptions];

export function gatewaySchema() {
  return createSchema<GatewayContext>({
    typeDefs: AREAS.map((a) => a.typeDefs),
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    resolvers: AREAS.map((a) => a.resolvers as any),
  });
}
