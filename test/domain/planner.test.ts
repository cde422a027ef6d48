import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { taskGraphProblems, templatePlanner, type PlanRequest } from "../../processors/domain/planner.js";
import { DIRECTORY, task } from "../support/decider-spec.js";

const request = (overrides: Partial<PlanRequest> = {}): PlanRequest => ({
  goalId: "g1",
  title: "Build the shop",
  description: "Build the shop",
  domains: ["frontend", "backend"],
  specializations: (d) => DIRECTORY.specializationsOf("aamas", d),
  phase: null,
  ...overrides,
});

describe("templatePlanner", () => {
  it("plans the same tasks, ids and dependencies for the same goal", () => {
    const first = templatePlanner.plan(request());
    const second = templatePlanner.plan(request({ specializations: (d) => DIRECTORY.specializationsOf("aamas", d) }));
    assert.deepStrictEqual(second, first);
    assert.deepStrictEqual(
      first.map((t) => [t.id, t.domain, t.specialization, t.dependsOn]),
      [
        ["frontend-css", "frontend", "css", []],
        ["frontend-react", "frontend", "react", ["frontend-css"]],
        ["backend-api", "backend", "api", []],
        ["backend-database", "backend", "database", ["backend-api"]],
        ["integrate", "frontend", "css", ["frontend-css", "frontend-react", "backend-api", "backend-database"]],
      ],
    );
  });

  it("prefixes a project phase's task ids with the phase and adds no integration task", () => {
    const tasks = templatePlanner.plan(request({ phase: "DESIGN", domains: ["testing"] }));
    assert.deepStrictEqual(
      tasks.map((t) => [t.id, t.phase, t.title]),
      [
        ["design-testing-e2e-test", "DESIGN", "Design: testing (e2e-test)"],
        ["design-testing-unit-test", "DESIGN", "Design: testing (unit-test)"],
      ],
    );
  });

  it("plans a lead task with no specialization for a domain without workers", () => {
    const tasks = templatePlanner.plan(request({ domains: ["ops"], specializations: () => [] }));
    assert.deepStrictEqual(
      tasks.map((t) => [t.id, t.specialization]),
      [["ops-lead", null]],
    );
  });
});

describe("taskGraphProblems", () => {
  it("accepts a valid DAG", () => {
    const dag = [
      task("a", "backend", "api"),
      task("b", "backend", "api", ["a"]),
      task("c", "frontend", "react", ["a"]),
      task("d", "testing", "unit-test", ["b", "c"]),
    ];
    assert.deepStrictEqual(taskGraphProblems(dag), []);
  });

  it("finds an empty graph", () => {
    assert.equal(taskGraphProblems([]).length, 1);
    assert.match(taskGraphProblems([])[0]!, /empty/);
  });

  it("finds a duplicate id", () => {
    assert.deepStrictEqual(taskGraphProblems([task("a", "backend", "api"), task("a", "frontend", "react")]), [
      'task id "a" is used twice',
    ]);
  });

  it("finds a dependency on an unknown task", () => {
    assert.deepStrictEqual(taskGraphProblems([task("a", "backend", "api", ["ghost"])]), [
      'task "a" depends on unknown task "ghost"',
    ]);
  });

  it("finds a task that depends on itself", () => {
    assert.deepStrictEqual(taskGraphProblems([task("a", "backend", "api", ["a"])]), ['task "a" depends on itself']);
  });

  it("finds a cycle and names its tasks, each before the one that depends on it", () => {
    const problems = taskGraphProblems([
      task("root", "backend", "api"),
      task("a", "backend", "api", ["root", "c"]),
      task("b", "backend", "api", ["a"]),
      task("c", "backend", "api", ["b"]),
    ]);
    assert.deepStrictEqual(problems, ["the tasks form a cycle: a -> b -> c -> a"]);
  });
});
