/** A task's key: unique across goals, the key of every per-task map in the state and the read models. */
export function taskKey(goalId: string, taskId: string): string {
  return `${goalId}/${taskId}`;
}
