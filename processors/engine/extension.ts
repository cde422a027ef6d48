/**
 * What plugs into the exactly-once engine (host.ts) beside the decider: timers (the deciders'
 * clock, the health monitor's ticks, workers' heartbeats, the autoscaler's samples), a hook for a
 * partition going live (failures declared while it was elsewhere), and side effects the state asks
 * for (a worker's executions, the president's planning). An extension never touches Kafka: what it
 * decides or writes goes through a live partition's next transaction, like any decision.
 */
import type { MessageTypeName } from "../../schemas/generated/types.js";
import type { Decision, SideEffectOutcome, TierInput } from "../domain/decider.js";
import type { HierarchyState } from "../domain/kernel/state.js";

export interface Extension {
  /** Its name in logs and in `polity topology describe`. */
  readonly name: string;
  /** What it does, in a few words (`polity topology describe`). */
  readonly summary: string;
  /** Messages it writes itself rather than through the decider (a heartbeat, a sample). */
  readonly writes?: readonly MessageTypeName[];
  /** Called once the host's consumer runs. */
  start?(host: EngineView): void;
  /** Awaited before a restored partition goes live (the scaler waits for its directory here). */
  beforeLive?(): Promise<void>;
  /**
   * A partition went live: its unacknowledged inputs are decided, its side effects not yet started,
   * its first transaction not yet sent.
   */
  onLive?(slot: LiveSlot, host: EngineView): void;
  /**
   * The side effects a partition's state asks for. The engine runs each once while it is asked for,
   * aborts it when it no longer is, and decides on its outcome as an input.
   */
  sideEffects?(state: HierarchyState): SideEffect[];
  /** A periodic job; not fired once the host stops. The interval is read when the host starts. */
  timer?: { intervalMs: number | (() => number); fire(host: EngineView): void };
  /** Called first when the host stops. */
  stop?(): void;
}

/** The host as an extension sees it. */
export interface EngineView {
  readonly role: string;
  /** The message types the role's decider reads. */
  readonly reads: ReadonlySet<MessageTypeName>;
  /** The partitions restored and deciding live, by partition number. */
  liveSlots(): LiveSlot[];
  log(line: string): void;
}

/** A live partition as an extension sees it. Nothing here waits: writing is the engine's. */
export interface LiveSlot {
  readonly partition: number;
  readonly state: HierarchyState;
  /**
   * Decides on inputs that come from no topic (a tick, a fact of the process's directory), folding
   * each decision at once; returns how many messages that decided. They go with the next commit.
   */
  decide(inputs: TierInput[]): number;
  /** Messages made outside the decider (heartbeats, samples): sent with the next transaction, which starts now. */
  write(decisions: Decision[]): void;
  /** Starts the side effects the state now asks for and aborts those it no longer asks for. */
  startSideEffects(): void;
  /** Sends what is decided in a transaction now (group commit: joins one in flight). */
  commit(): void;
}

/** A side effect the state calls for: run outside the decider, its outcome handed back to it. */
export interface SideEffect {
  /** Identifies the effect: one runs per key at a time, and it is aborted once the state no longer asks for its key. */
  key: string;
  /**
   * Runs it; null when nothing is to be reported (an agent silenced by a test). `report` hands over
   * intermediate outcomes (progress) while it runs.
   */
  run(signal: AbortSignal, report: (outcome: SideEffectOutcome) => void): Promise<SideEffectOutcome | null>;
}
