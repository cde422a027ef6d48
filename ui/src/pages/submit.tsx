/**
 * Submit a goal or a project: the form builds a GoalInput, a dialog confirms it, and the answer is
 * the gateway's receipt (with what the read model shows once it has it) or its refusal.
 */
import { useState } from "react";
import { ApiError, gql } from "../api";
import { Card, Confirm, ErrorBox } from "../components";
import { href } from "../router";
import { useQuery, useSession } from "../session";

interface Receipt {
  commandId: string;
  accepted: boolean;
  aggregateId: string;
  projected: boolean;
  outcome: string | null;
}

const EXAMPLE_TASKS = `[
  { "id": "design", "title": "Design the page", "domain": "frontend", "specialization": "react" },
  { "id": "api", "title": "Build the API", "domain": "backend", "specialization": "api" },
  { "id": "test", "title": "Test it", "domain": "testing", "specialization": "unit-test", "dependsOn": ["design", "api"] }
]`;

export function SubmitPage() {
  const session = useSession();
  const domains = useQuery<{ agents: { domain: string | null; topology: string | null }[] }>(
    "query Domains { agents { domain topology } }",
  );
  const [kind, setKind] = useState<"GOAL" | "PROJECT">("GOAL");
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [priority, setPriority] = useState(5);
  const [topology, setTopology] = useState("aamas");
  const [hints, setHints] = useState<string[]>([]);
  const [budget, setBudget] = useState("");
  const [deadline, setDeadline] = useState("");
  const [manualGate, setManualGate] = useState(false);
  const [tasks, setTasks] = useState("");
  const [submitted, setSubmitted] = useState<Receipt | null>(null);
  const known = [...new Set((domains.data?.agents ?? []).filter((a) => a.topology === topology).map((a) => a.domain))]
    .filter((d): d is string => !!d)
    .sort();
  const canSubmit = session.me.role === "operator" || session.me.role === "admin";

  const input = () => {
    let parsedTasks: unknown;
    if (tasks.trim()) {
      try {
        parsedTasks = JSON.parse(tasks);
      } catch (e) {
        throw new ApiError(`tasks: not JSON (${(e as Error).message})`, "INVALID_INPUT", 0, "tasks");
      }
    }
    return {
      title: title.trim(),
      description: description.trim() || undefined,
      priority,
      topology,
      domainHints: hints.length ? hints : undefined,
      budget: budget.trim() || undefined,
      deadline: deadline ? new Date(deadline).toISOString() : undefined,
      constraints: kind === "PROJECT" && manualGate ? [{ key: "phaseGate", value: "manual" }] : undefined,
      tasks: parsedTasks,
    };
  };

  return (
    <div className="page" data-testid="page-submit">
      <h1>Submit a goal or a project</h1>
      {!canSubmit && (
        <ErrorBox error={`role ${session.me.role} may not submit; sign in with an operator or admin token`} />
      )}
      <Card>
        <form className="form" onSubmit={(e) => e.preventDefault()}>
          <fieldset className="inline">
            <label>
              <input type="radio" checked={kind === "GOAL"} onChange={() => setKind("GOAL")} /> goal
            </label>
            <label>
              <input type="radio" checked={kind === "PROJECT"} onChange={() => setKind("PROJECT")} /> project (eight
              SDLC phases)
            </label>
          </fieldset>
          <label>
            Title
            <input
              value={title}
              onChange={(e) => setTitle(e.target.value)}
              placeholder="Online bookshop"
              data-testid="submit-title"
            />
          </label>
          <label>
            Description
            <textarea rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
          </label>
          <div className="row">
            <label>
              Priority (1–10)
              <input
                type="number"
                min={1}
                max={10}
                value={priority}
                onChange={(e) => setPriority(Number(e.target.value))}
              />
            </label>
            <label>
              Topology
              <select value={topology} onChange={(e) => setTopology(e.target.value)}>
                <option value="aamas">aamas (president → governor → mayor → worker)</option>
                <option value="dgm">dgm (master → sub-master → worker)</option>
              </select>
            </label>
            <label>
              Budget (optional)
              <input value={budget} onChange={(e) => setBudget(e.target.value)} placeholder="100.0000" />
            </label>
            <label>
              Deadline (optional)
              <input type="datetime-local" value={deadline} onChange={(e) => setDeadline(e.target.value)} />
            </label>
          </div>
          <fieldset className="inline">
            <legend>Domains (hints for the planner)</legend>
            {known.map((d) => (
              <label key={d}>
                <input
                  type="checkbox"
                  checked={hints.includes(d)}
                  onChange={(e) => setHints(e.target.checked ? [...hints, d] : hints.filter((h) => h !== d))}
                />{" "}
                {d}
              </label>
            ))}
            {known.length === 0 && <span className="muted">no agents in this topology</span>}
          </fieldset>
          {kind === "PROJECT" && (
            <label className="inline">
              <input type="checkbox" checked={manualGate} onChange={(e) => setManualGate(e.target.checked)} /> wait for
              my approval between phases (phaseGate: manual)
            </label>
          )}
          <label>
            Tasks (optional JSON DAG; leave empty to let the planner decompose)
            <textarea
              rows={6}
              value={tasks}
              onChange={(e) => setTasks(e.target.value)}
              placeholder={EXAMPLE_TASKS}
              className="mono"
              data-testid="submit-tasks"
            />
          </label>
          <div className="row">
            <Confirm
              label={kind === "PROJECT" ? "Submit project" : "Submit goal"}
              title={`Submit ${kind === "PROJECT" ? "project" : "goal"} "${title || "(untitled)"}"?`}
              disabled={!canSubmit}
              disabledWhy={`role ${session.me.role} may not submit`}
              testId="submit"
              run={async () => {
                const mutation = kind === "PROJECT" ? "submitProject" : "submitGoal";
                const r = await gql<Record<string, Receipt>>(
                  session.token,
                  `mutation ($input: GoalInput!) { ${mutation}(input: $input, waitForProjection: true) { commandId accepted aggregateId projected outcome } }`,
                  { input: input() },
                );
                const receipt = r[mutation]!;
                setSubmitted(receipt);
                return `Accepted as ${receipt.aggregateId}${receipt.outcome ? `: ${receipt.outcome}` : ""}.`;
              }}
            >
              <p>
                It goes to the {topology} hierarchy of tenant <strong>{session.me.tenantId}</strong> with priority{" "}
                {priority}
                {hints.length ? ` in ${hints.join(", ")}` : ""}.
              </p>
            </Confirm>
            <button type="button" className="link" onClick={() => setTasks(EXAMPLE_TASKS)}>
              Use the example tasks
            </button>
          </div>
          {submitted && (
            <p className="ok" data-testid="submitted">
              Submitted: <a href={href.goal(submitted.aggregateId)}>{submitted.aggregateId}</a>
              {submitted.outcome ? ` (${submitted.outcome})` : ""}
            </p>
          )}
        </form>
      </Card>
    </div>
  );
}
