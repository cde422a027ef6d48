/**
 * Fault injection, processes: each processor role and each read model's projection is SIGKILLed in
 * the middle of a workload and started again. Runs through `npm run test:faults` only.
 */
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ROLES } from "../../processors/hierarchy.js";
import { faultRound, MODELS, Platform, SKIP, type ProcName } from "./support.js";

describe("faults: SIGKILL of a process mid-run, then restart", { skip: SKIP }, () => {
  let p: Platform;
  before(async () => {
    p = await Platform.start("kill");
  });
  after(async () => {
    await p?.stop();
  });

  const victims: ProcName[] = [...ROLES, ...MODELS.map((m) => `projection-${m}` as const)];
  for (const name of victims) {
    it(`SIGKILL ${name}`, async () => {
      await faultRound(p, {
        fault: `SIGKILL ${name}`,
        replaced: [name],
        async inject() {
          await p.kill(name);
          await p.spawn(name);
        },
      });
    });
  }

  // Down longer than the health monitor's timeout (3 heartbeats of 5 s): every hosted worker is
  // declared failed and its tasks are reassigned while the process is away, then it comes back and
  // recovers. A clean-clone CI run hit this by accident (a slow restart) and lost goals: a task
  // handed to a governor while no worker of its specialization was up, and attempts the restarted
  // worker accepted although they had been reassigned meanwhile.
  it("SIGKILL worker, down past the heartbeat timeout", async () => {
    await faultRound(p, {
      fault: "SIGKILL worker, down 25 s",
      replaced: ["worker"],
      async inject() {
        await p.kill("worker");
        await sleep(25_000);
        await p.spawn("worker");
      },
    });
  });
});
