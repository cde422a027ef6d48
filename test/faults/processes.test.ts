/**
 * Fault injection, processes: each processor role and each read model's projection is SIGKILLed in
 * the middle of a workload and started again. Runs through `npm run test:faults` only.
 */
import { after, before, describe, it } from "node:test";
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
});
