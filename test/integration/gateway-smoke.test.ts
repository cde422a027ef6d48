/**
 * The gateway end to end in its simplest form: a goal submitted over GraphQL runs through the
 * hierarchy, and the same gateway then shows it completed with its tasks (read your own write).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TEN_TASK_DAG } from "../support/hierarchy.js";
import { gatewayRig, type GatewayRig } from "../support/gateway.js";

describe("gateway smoke", () => {
  let rig: GatewayRig;
  before(async () => {
    rig = await gatewayRig("gw-smoke");
  });
  after(async () => {
    await rig?.stop();
  });

  it("submits a goal over GraphQL and reads it back completed, with its ten tasks", async () => {
    const token = await rig.token("operator");
    const submitted = await rig.graphql(
      `mutation ($input: GoalInput!) { submitGoal(input: $input, waitForProjection: true) { commandId accepted aggregateId projected outcome } }`,
      { input: { title: "smoke", tasks: TEN_TASK_DAG.map((t) => ({ ...t, inputs: [] })) } },
      token,
    );
    assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
    const receipt = submitted.body.data!.submitGoal as { aggregateId: string; projected: boolean; accepted: boolean };
    assert.equal(receipt.accepted, true);
    assert.equal(receipt.projected, true, JSON.stringify(receipt));
    const end = await rig.d.watch.final(receipt.aggregateId, 90_000);
    assert.equal(end.type, "GoalCompleted");
    let goal: { status: string; tasks: { status: string }[] } | undefined;
    for (let i = 0; i < 100; i++) {
      const r = await rig.graphql(
        `query ($id: ID!) { goal(id: $id) { status tasks { taskId status } } }`,
        { id: receipt.aggregateId },
        token,
      );
      goal = r.body.data?.goal as typeof goal;
      if (goal?.status === "COMPLETED" && goal.tasks.length === 10 && goal.tasks.every((t) => t.status === "COMPLETED"))
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(goal?.status, "COMPLETED");
    assert.equal(goal?.tasks.length, 10);
  });
});
