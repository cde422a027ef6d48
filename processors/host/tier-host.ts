/**
 * The exactly-once host moved: the engine is processors/engine/host.ts (ExactlyOnceHost), what plugs
 * into it processors/engine/extension.ts, and each role's extensions live in processors/roles/.
 * These names stay for code that still imports them from here.
 */
export { ExactlyOnceHost as TierHost, type HostOptions as TierHostOptions, type TierTopics } from "../engine/host.js";
export type { Extension, SideEffect } from "../engine/extension.js";
export type { AgentEventSource } from "../roles/shared/agent-status.js";
export { monitorIdFor } from "../roles/health/ticks.js";
