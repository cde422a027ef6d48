/**
 * A token bucket per caller: `perSecond` requests per second on average, bursts up to twice that.
 * A key may have a rate of its own (a tenant's plan, gateway/plans.ts), passed with each `take`.
 * Buckets idle for a minute are forgotten so the map does not grow with every address ever seen.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = Date.now();

  constructor(readonly perSecond: number) {}

  /** Takes one request from `key`'s bucket; false when it is empty (the request is refused). */
  take(key: string, now = Date.now(), perSecond = this.perSecond): boolean {
    const burst = perSecond * 2;
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (now - this.lastSweep > 60_000) {
      for (const [k, v] of this.buckets) if (now - v.at > 60_000) this.buckets.delete(k);
      this.lastSweep = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
