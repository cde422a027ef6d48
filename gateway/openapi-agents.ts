/**
 * The OpenAPI paths of the worker API (gateway/worker-api.ts), spread into the document of
 * gateway/openapi.ts. The schemas are inlined in the operations (and exported as `components` for
 * tools that want them by name), so the document needs no component of ours; errors refer to the
 * document's shared error responses. The AAMAS WebSocket protocol at /ws (gateway/agent-socket.ts)
 * is not HTTP and is described in that file.
 */
// The worker API's limits and request schemas live in gateway/contract, modules without imports of
// the gateway's routers, because the document is built when openapi.ts loads, and worker-api.ts
// imports rest.ts, which imports openapi.ts: read from worker-api.ts, they would not be initialised yet.
import { HEARTBEAT_STATUSES } from "./contract/enums.js";
import { workerRequestSchemas } from "./contract/json-schema.js";
import { MAX_WAIT_SECONDS } from "./contract/worker.js";

export { HEARTBEAT_STATUSES, MAX_WAIT_SECONDS };

type Schema = Record<string, unknown>;

const ID = { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$" };
const errors = (...names: string[]) =>
  Object.fromEntries(
    names.map((n) => [
      {
        BadRequest: "400",
        Unauthenticated: "401",
        Forbidden: "403",
        NotFound: "404",
        PayloadTooLarge: "413",
        RateLimited: "429",
        Internal: "500",
      }[n]!,
      { $ref: `#/components/responses/${n}` },
    ]),
  );
const common = errors("Unauthenticated", "Forbidden", "RateLimited", "Internal");
const withBody = errors("BadRequest", "PayloadTooLarge");
const json = (schema: Schema, description = "OK") => ({ description, content: { "application/json": { schema } } });
const body = (schema: Schema) => ({ required: true, content: { "application/json": { schema } } });
const AGENT_ONLY =
  "Access: an agent token (role agent, with an `agent` claim); the call speaks for that agent only. Mint one with `npm run token -- --role agent --agent <id>`.";

const TaskSpec: Schema = {
  type: "object",
  description: "The task as the TaskAssigned carries it (schemas/avro/shared/TaskSpec.avsc).",
  properties: {
    id: ID,
    title: { type: "string" },
    description: { type: ["string", "null"] },
    domain: { type: "string" },
    specialization: { type: ["string", "null"] },
    phase: { type: ["string", "null"] },
    dependsOn: { type: "array", items: { type: "string" } },
    estimatedEffortMs: { type: ["integer", "null"] },
    priority: { type: ["integer", "null"] },
    inputs: { type: "object", additionalProperties: { type: "string" } },
  },
};

const Assignment: Schema = {
  type: "object",
  description: "An attempt of a task assigned to the agent and not accepted yet.",
  required: ["goalId", "taskId", "attempt", "task"],
  properties: {
    goalId: ID,
    taskId: ID,
    attempt: { type: "integer", minimum: 1 },
    assignedBy: { type: ["string", "null"], description: "The mayor (aamas) or sub-master (dgm) that assigned it." },
    priority: { type: "integer", minimum: 1, maximum: 10 },
    timeoutMs: { type: ["integer", "null"] },
    task: TaskSpec,
  },
};

/** The request bodies, generated from the schemas that validate them (gateway/contract/worker.ts). */
const {
  WorkerAcceptRequest: AcceptRequest,
  WorkerProgressRequest: ProgressRequest,
  WorkerContextRequest: ContextRequest,
  WorkerCapabilitiesRequest: CapabilitiesRequest,
  WorkerHeartbeatRequest: HeartbeatRequest,
} = workerRequestSchemas();

const Accepted: Schema = {
  type: "object",
  properties: {
    goalId: ID,
    taskId: ID,
    attempt: { type: "integer" },
    agentId: { type: "string" },
    status: { type: "string", description: "RUNNING once accepted (or the status the task already had)." },
    written: {
      type: "boolean",
      description: "False when the attempt was accepted already: nothing was written again.",
    },
    eventIds: { type: "array", items: { type: "string" }, description: "The TaskAccepted and TaskStarted written." },
  },
};

const Progressed: Schema = {
  type: "object",
  properties: {
    goalId: ID,
    taskId: ID,
    attempt: { type: "integer" },
    agentId: { type: "string" },
    percent: { type: "integer" },
    eventId: { type: "string" },
  },
};

const ContextAnswer: Schema = {
  type: "object",
  required: ["requestId", "status"],
  properties: {
    requestId: { type: "string", description: "ctx-<taskId>-<attempt>-<agentId>: the same on every retry." },
    status: { enum: ["ANSWERED", "PENDING"] },
    asked: { type: "boolean", description: "Whether this call wrote the ContextRequested." },
    providerId: { type: "string" },
    context: { type: "object", additionalProperties: { type: "string" } },
    note: { type: ["string", "null"] },
    poll: { type: "string", description: "Where to ask again when PENDING." },
  },
};

const Registration: Schema = {
  type: "object",
  description: "The AgentRegistered written: the registration with the updates applied.",
  properties: {
    agentId: { type: "string" },
    specialization: { type: ["string", "null"] },
    capacity: { type: "integer" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    eventId: { type: "string" },
  },
};

const Heartbeat: Schema = {
  type: "object",
  properties: {
    agentId: { type: "string" },
    status: { type: "string" },
    load: { type: "number" },
    sequence: { type: "integer" },
    heartbeatIntervalMs: {
      type: ["integer", "null"],
      description: "Beat at least this often: three intervals of silence make the agent FAILED.",
    },
    eventId: { type: "string" },
  },
};

const Me: Schema = {
  type: "object",
  description: "The agent (as GET /agents/{id} shows it) with its heartbeat interval and its open tasks.",
  properties: {
    id: { type: "string" },
    status: { type: ["string", "null"] },
    heartbeatIntervalMs: { type: ["integer", "null"] },
    lastHeartbeat: { type: ["string", "null"], format: "date-time" },
    tasks: { type: "array", items: { type: "object" } },
  },
  additionalProperties: true,
};

export const components = {
  schemas: {
    WorkerAssignment: Assignment,
    WorkerAcceptRequest: AcceptRequest,
    WorkerAccepted: Accepted,
    WorkerProgressRequest: ProgressRequest,
    WorkerProgressed: Progressed,
    WorkerContextRequest: ContextRequest,
    WorkerContextAnswer: ContextAnswer,
    WorkerCapabilitiesRequest: CapabilitiesRequest,
    WorkerRegistration: Registration,
    WorkerHeartbeatRequest: HeartbeatRequest,
    WorkerHeartbeat: Heartbeat,
    WorkerMe: Me,
  },
};

const op = (o: Schema): Schema => ({ tags: ["worker"], security: [{ bearer: [] }], ...o });

export const paths: Record<string, Record<string, Schema>> = {
  "/tasks/next": {
    get: op({
      operationId: "workerNextTask",
      summary: "Long-poll for the agent's next assignment",
      description: `The agent's next open assignment (a TaskAssigned to it, not accepted yet), highest priority first; waits up to \`wait\` seconds for one, then answers 204. Usable behind NAT. ${AGENT_ONLY}`,
      parameters: [
        {
          name: "wait",
          in: "query",
          required: false,
          description: `Seconds to wait, 0 to ${MAX_WAIT_SECONDS} (default 0).`,
          schema: { type: "number", minimum: 0, maximum: MAX_WAIT_SECONDS },
        },
      ],
      responses: {
        "200": json(Assignment),
        "204": { description: "No assignment came within the wait." },
        ...errors("BadRequest"),
        ...common,
      },
    }),
  },
  "/agents/me/tasks/stream": {
    get: op({
      operationId: "workerTaskStream",
      summary: "Server-sent events: the agent's assignments",
      description: `An event \`task\` (data: an assignment, id: goalId/taskId#attempt) for each open assignment when the stream opens and each new one after; comment lines keep the connection alive. ${AGENT_ONLY}`,
      responses: {
        "200": { description: "text/event-stream", content: { "text/event-stream": { schema: { type: "string" } } } },
        ...common,
      },
    }),
  },
  "/tasks/accept": {
    post: op({
      operationId: "workerAcceptTask",
      summary: "Accept an assignment",
      description: `Writes TaskAccepted and TaskStarted for the attempt, as the agent. Accepting again writes nothing. 403 when the task is not the agent's; 400 (field attempt) when the attempt is not the current one or is over. ${AGENT_ONLY}`,
      requestBody: body(AcceptRequest),
      responses: { "200": json(Accepted), ...withBody, ...errors("NotFound"), ...common },
    }),
  },
  "/tasks/{taskId}/update": {
    post: op({
      operationId: "workerTaskProgress",
      summary: "Report progress on an accepted attempt",
      description: `Writes TaskProgressed. ${AGENT_ONLY}`,
      parameters: [{ name: "taskId", in: "path", required: true, description: "The task.", schema: ID }],
      requestBody: body(ProgressRequest),
      responses: { "200": json(Progressed), ...withBody, ...errors("NotFound"), ...common },
    }),
  },
  "/context/request": {
    post: op({
      operationId: "workerRequestContext",
      summary: "Ask the superior for context",
      description: `Writes ContextRequested (requestId ctx-<taskId>-<attempt>-<agentId>, so a retry asks once) and answers with the ContextProvided when it comes within \`wait\`; otherwise 202 with the requestId and where to poll. ${AGENT_ONLY}`,
      requestBody: body(ContextRequest),
      responses: {
        "200": json(ContextAnswer, "The superior's answer."),
        "202": json(ContextAnswer, "Asked; no answer yet: poll the Location."),
        ...withBody,
        ...errors("NotFound"),
        ...common,
      },
    }),
  },
  "/context/{requestId}": {
    get: op({
      operationId: "workerContextAnswer",
      summary: "Poll for the answer to a context request",
      description: `200 with the answer, 202 while pending. ${AGENT_ONLY}`,
      parameters: [
        {
          name: "requestId",
          in: "path",
          required: true,
          description: "From POST /context/request.",
          schema: { type: "string" },
        },
        { name: "goalId", in: "query", required: true, description: "The goal of the task.", schema: ID },
      ],
      responses: {
        "200": json(ContextAnswer),
        "202": json(ContextAnswer, "Not answered yet."),
        ...errors("BadRequest", "NotFound"),
        ...common,
      },
    }),
  },
  "/capabilities/update": {
    post: op({
      operationId: "workerUpdateCapabilities",
      summary: "Update the agent's own capabilities",
      description: `Registers the agent again under its own id (AgentRegistered as the agent, as an external agent announces itself) with the new specialization, capabilities label, capacity or labels; the rest of its registration stays. The RegisterAgent command is not used: the scaler refuses an id that is taken. Only for an external agent. ${AGENT_ONLY}`,
      requestBody: body(CapabilitiesRequest),
      responses: { "202": json(Registration, "Written."), ...withBody, ...errors("NotFound"), ...common },
    }),
  },
  "/agents/me/heartbeat": {
    post: op({
      operationId: "workerHeartbeat",
      summary: "Heartbeat",
      description: `Writes AgentHeartbeat as the agent. From its first heartbeat the health monitor watches it: three heartbeat intervals of silence make it FAILED and its tasks are reassigned. Only for an external agent. ${AGENT_ONLY}`,
      requestBody: { required: false, content: { "application/json": { schema: HeartbeatRequest } } },
      responses: { "202": json(Heartbeat, "Written."), ...withBody, ...errors("NotFound"), ...common },
    }),
  },
  "/agents/me": {
    get: op({
      operationId: "workerMe",
      summary: "The agent itself and its open tasks",
      description: AGENT_ONLY,
      responses: { "200": json(Me), ...errors("NotFound"), ...common },
    }),
  },
};
