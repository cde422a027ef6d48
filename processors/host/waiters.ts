/**
 * Promises that settle once a condition over a feed's state holds: the feeds (agents directory,
 * policy book) call `wake()` after every batch they fold, and callers `until(...)` a condition.
 */
export class Waiters {
  private readonly waiting: { done: () => boolean; resolve: () => void }[] = [];

  /** Resolves once `done()` holds, or rejects after `timeoutMs` saying what it waited for. */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms ${what}; is Kafka reachable?`)),
        timeoutMs,
      );
      this.waiting.push({ done, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** Settles every waiter whose condition now holds. */
  wake(): void {
    for (const w of [...this.waiting]) {
      if (w.done()) {
        this.waiting.splice(this.waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  }
}
