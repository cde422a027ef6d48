/**
 * Hosted agents made to hang, as a test's stand-in for a stuck process (test/integration/health.test.ts):
 * a silenced agent stops heartbeating, and its attempts are neither started nor reported until it
 * is let go again. The worker's extensions consult it; the hosts of every role report such an agent down.
 */
export class SilencedAgents {
  private readonly agents = new Set<string>();
  private readonly listeners = new Set<() => void>();

  has(agentId: string): boolean {
    return this.agents.has(agentId);
  }

  silence(agentId: string): void {
    this.agents.add(agentId);
  }

  unsilence(agentId: string): void {
    this.agents.delete(agentId);
    for (const listener of this.listeners) listener();
  }

  /** Calls `listener` whenever an agent is let go; returns an unsubscribe. */
  onUnsilence(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
