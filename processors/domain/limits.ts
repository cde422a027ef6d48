/**
 * How often a failing task is tried again before it goes up the hierarchy, per topology (the DGM
 * design: a worker task is delivered up to 5 times, a domain task 3 times).
 *
 * - worker: attempts (deliveries to workers) the worker-level dispatcher (mayor, sub-master) makes
 *   in one delivery of the task to the domain, each on another worker when it can, before it
 *   escalates. The president writes it into TaskCreated.maxAttempts, so a task keeps the limit it
 *   was created with whatever the configuration says later.
 * - domain: deliveries of the task within its domain. When the worker attempts of a delivery run
 *   out, the domain tier (governor, sub-master) dispatches it again, up to this many deliveries in
 *   all, before it escalates to the top. A failure that cannot be retried goes up at once.
 *
 * Attempt numbers count every delivery of a task, so delivery d spans attempts
 * (d - 1) * worker + 1 .. d * worker, and a task is tried at most worker * domain times.
 */
import type { Topology } from "../../schemas/generated/types.js";

export interface RetryLimits {
  worker: number;
  domain: number;
}

export const DEFAULT_RETRY_LIMITS: Readonly<RetryLimits> = Object.freeze({ worker: 5, domain: 3 });

/** The limits in force for `topology`: the context's, else the defaults. */
export function retryLimitsFor(
  ctx: { retryLimits?: (topology: Topology) => RetryLimits },
  topology: Topology,
): RetryLimits {
  return ctx.retryLimits?.(topology) ?? DEFAULT_RETRY_LIMITS;
}

/** The delivery (1-based) an attempt belongs to, with `perDelivery` attempts in each. */
export function deliveryOf(attempt: number, perDelivery: number): number {
  return Math.ceil(attempt / Math.max(1, perDelivery));
}

/** The attempt's position (1-based) within its delivery. */
export function attemptInDelivery(attempt: number, perDelivery: number): number {
  return ((attempt - 1) % Math.max(1, perDelivery)) + 1;
}
