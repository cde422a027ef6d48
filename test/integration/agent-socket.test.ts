/**
 * The AAMAS WebSocket protocol at /ws on the real stack: token in the URL or a first auth message,
 * agent_update messages for a subscribed agent from the live feed (task events only of the
 * caller's tenant), commands forwarded under REST's permissions and validation, and errors for
 * bad messages with the connection kept. GraphQL over WebSocket at /graphql keeps working beside it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { agentRig, eventually, externalTask, EXTERNAL_AGENT, type AgentRig } from "../support/agent-rig.js";

type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A socket client that keeps every message and waits for the one it wants. */
class Client {
  readonly received: Msg[] = [];
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.received.push(JSON.parse(data.toString()) as Msg);
      for (const w of [...this.waiters]) w();
    });
  }

  static open(url: string, protocol?: string): Promise<Client> {
    const ws = new WebSocket(url, protocol);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new Client(ws)));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  send(m: unknown): void {
    this.ws.send(typeof m === "string" ? m : JSON.stringify(m));
  }

  next(what: string, ok: (m: Msg) => boolean, ms = 20_000): Promise<Msg> {
    const found = () => this.received.find(ok);
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = found();
        if (!m) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`no ${what} within ${ms} ms; received ${JSON.stringify(this.received)}`));
      }, ms);
      this.waiters.push(check);
      check();
    });
  }

  /** Sends a message with an id and waits for the answer carrying it. */
  async ask(m: Msg): Promise<Msg> {
    const id = Math.random().toString(36).slice(2);
    this.send({ ...m, id });
    return this.next(`the answer to ${JSON.stringify(m)}`, (x) => x.id === id);
  }

  close(): void {
    this.ws.close();
  }
}

describe("AAMAS WebSocket protocol at /ws", () => {
  let rig: AgentRig;
  let ws: string;
  const clients: Client[] = [];
  const open = async (query = "") => {
    const c = await Client.open(`${ws}/ws${query}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    rig = await agentRig("agent-socket");
    ws = rig.url.replace(/^http/, "ws");
    await eventually(
      "the external agent in the read model",
      () => rig.read.agent(EXTERNAL_AGENT),
      (a) => !!a?.tier,
    );
  });
  after(async () => {
    for (const c of clients) c.close();
    await rig?.stop();
  });

  it("authenticates by ?token= or a first auth message, and refuses a bad token", async () => {
    const operator = await rig.token("operator");
    const byQuery = await open(`?token=${operator}`);
    const hello = await byQuery.next("authenticated", (m) => m.type === "authenticated");
    assert.equal(hello.role, "operator");
    assert.equal(hello.tenant, "acme");

    const later = await open();
    const early = await later.ask({ type: "subscribe", agent_id: EXTERNAL_AGENT });
    assert.equal(early.type, "error");
    assert.equal(early.code, "UNAUTHENTICATED");
    const authed = await later.ask({ type: "auth", token: operator });
    assert.equal(authed.type, "authenticated", JSON.stringify(authed));

    await assert.rejects(open("?token=not-a-jwt"), /401/);
  });

  it("answers malformed and unknown messages with errors and keeps the connection", async () => {
    const c = await open(`?token=${await rig.token("viewer")}`);
    c.send("{not json");
    const malformed = await c.next("an error for malformed JSON", (m) => m.type === "error" && m.field === "message");
    assert.equal(malformed.code, "INVALID_INPUT");
    const unknown = await c.ask({ type: "bogus" });
    assert.equal(unknown.type, "error");
    assert.equal(unknown.field, "type");
    for (const known of ["auth", "subscribe", "unsubscribe", "command", "ping"])
      assert.ok(unknown.message.includes(known), unknown.message);
    const noAgent = await c.ask({ type: "subscribe" });
    assert.equal(noAgent.field, "agent_id");
    const nobody = await c.ask({ type: "subscribe", agent_id: "no-such-agent" });
    assert.equal(nobody.code, "NOT_FOUND");
    assert.equal((await c.ask({ type: "ping" })).type, "pong", "the connection is still open");
  });

  it("sends agent_update for the subscribed agent: its heartbeats, and task events of the caller's tenant only", async () => {
    const mine = await open(`?token=${await rig.token("viewer")}`);
    const foreign = await open(`?token=${await rig.token("viewer", undefined, "globex")}`);
    for (const c of [mine, foreign]) {
      const r = await c.ask({ type: "subscribe", agent_id: EXTERNAL_AGENT });
      assert.equal(r.type, "subscribed", JSON.stringify(r));
    }
    const agent = await rig.token("agent", EXTERNAL_AGENT);
    const beat = await rig.call("POST", "/agents/me/heartbeat", agent, { status: "IDLE" });
    assert.equal(beat.status, 202, JSON.stringify(beat.body));
    for (const c of [mine, foreign]) {
      const u = await c.next("a heartbeat update", (m) => m.type === "agent_update" && m.event === "AgentHeartbeat");
      assert.equal(u.agent_id, EXTERNAL_AGENT);
      assert.equal(u.kind, "heartbeat");
      assert.equal(u.data.status, "IDLE");
      assert.equal(u.data.envelope, undefined);
    }

    const submitted = await rig.call("POST", "/goals", await rig.token("operator"), {
      title: "socket goal",
      tasks: [externalTask("watched")],
    });
    assert.equal(submitted.status, 202);
    const assigned = await mine.next("the assignment", (m) => m.type === "agent_update" && m.event === "TaskAssigned");
    assert.equal(assigned.kind, "task");
    assert.equal(assigned.data.goalId, submitted.body.aggregateId);
    assert.equal(assigned.data.taskId, "watched");
    // The server sent the foreign connection whatever it would get of this event before it answers a
    // ping sent now: one connection's messages arrive in order.
    assert.equal((await foreign.ask({ type: "ping" })).type, "pong");
    assert.equal(
      foreign.received.filter((m) => m.type === "agent_update" && m.kind === "task").length,
      0,
      "another tenant sees none of acme's task events",
    );

    const off = await mine.ask({ type: "unsubscribe", agent_id: EXTERNAL_AGENT });
    assert.equal(off.type, "unsubscribed");
  });

  it("forwards commands under the same permissions and validation as REST", async () => {
    const operator = await open(`?token=${await rig.token("operator")}`);
    const submitted = await operator.ask({
      type: "command",
      command: "submit_goal",
      args: { title: "stopped by socket", tasks: [externalTask("never")] },
    });
    assert.equal(submitted.type, "command_result", JSON.stringify(submitted));
    assert.equal(submitted.receipt.commandType, "SubmitGoal");
    const goalId = submitted.receipt.aggregateId as string;
    await eventually(
      "the goal in the read model",
      () => rig.read.goal("acme", goalId),
      (g) => !!g,
    );

    const stop = await operator.ask({
      type: "command",
      command: "stop_goal",
      args: { goalId, reason: "from the socket" },
    });
    assert.equal(stop.type, "command_result", JSON.stringify(stop));
    assert.equal(stop.receipt.commandType, "StopGoal");
    assert.equal((await rig.d.watch.final(goalId, 30_000)).type, "GoalStopped");

    const forbidden = await operator.ask({
      type: "command",
      command: "scale",
      args: { tier: "WORKER", targetCount: 2 },
    });
    assert.equal(forbidden.type, "error");
    assert.equal(forbidden.code, "FORBIDDEN", "an operator may not scale, as in REST");
    const admin = await open(`?token=${await rig.token("admin")}`);
    const invalid = await admin.ask({ type: "command", command: "scale", args: { tier: "WORKER", targetCount: -1 } });
    assert.equal(invalid.code, "INVALID_INPUT", JSON.stringify(invalid));
    assert.equal(invalid.field, "targetCount");
    const unknown = await admin.ask({ type: "command", command: "explode" });
    assert.equal(unknown.field, "command");
    assert.ok(unknown.message.includes("stop_goal"), unknown.message);
  });

  it("leaves GraphQL over WebSocket at /graphql working beside it", async () => {
    const c = await Client.open(`${ws}/graphql`, "graphql-transport-ws");
    clients.push(c);
    c.send({ type: "connection_init", payload: {} });
    await c.next("connection_ack", (m) => m.type === "connection_ack");
  });
});
