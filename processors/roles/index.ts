/**
 * Every role of the hierarchy, in the order a process starts them. Each is declared in
 * roles/<role>/role.ts. The roles that read a goal's topics are co-partitioned by goal id (6
 * partitions each), so one slot holds every event of its goals; every role that answers something
 * a policy may refuse (a command, a context request, a query) also folds polity.governance.events,
 * for its own refusals (PolicyEvaluated DENY, state.ts `refused`), so a refused input decided again
 * after a restart is refused no second time.
 */
import type { Role } from "../domain/directory.js";
import type { TierTopics } from "../engine/host.js";
import { governorRole } from "./governor/role.js";
import { healthRole } from "./health/role.js";
import { mayorRole } from "./mayor/role.js";
import { policyRole } from "./policy/role.js";
import { presidentRole } from "./president/role.js";
import type { RoleDefinition } from "./role.js";
import { resourcesRole } from "./resources/role.js";
import { scalerRole } from "./scaler/role.js";
import { workerRole } from "./worker/role.js";

export const ROLE_DEFINITIONS: Record<Role, RoleDefinition> = {
  president: presidentRole,
  governor: governorRole,
  mayor: mayorRole,
  worker: workerRole,
  policy: policyRole,
  health: healthRole,
  resources: resourcesRole,
  scaler: scalerRole,
};

export const ROLES: readonly Role[] = Object.keys(ROLE_DEFINITIONS) as Role[];

/** The topics each role consumes and restores its state from. */
export const TIER_TOPICS: Record<Role, TierTopics> = Object.fromEntries(
  ROLES.map((r) => [r, { inputs: ROLE_DEFINITIONS[r].inputs, state: ROLE_DEFINITIONS[r].state }]),
) as Record<Role, TierTopics>;
