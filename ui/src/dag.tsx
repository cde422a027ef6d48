/** A goal's task DAG drawn as SVG: one column per layer (longest path from a root), edges as curves. */
import { useMemo } from "react";
import { layers, type TaskView } from "./fold";

const NODE_W = 168;
const NODE_H = 38;
const COL_GAP = 56;
const ROW_GAP = 12;

export function Dag(props: { tasks: TaskView[]; selected: string | null; onSelect: (taskId: string) => void }) {
  const { tasks } = props;
  // The layout depends on the graph only, not on the states: states change live, positions do not.
  const shape = tasks.map((t) => `${t.taskId}<${t.dependsOn.join(",")}`).join(";");
  const layout = useMemo(() => {
    const depth = layers(tasks);
    const columns: TaskView[][] = [];
    for (const t of tasks) (columns[depth.get(t.taskId) ?? 0] ??= []).push(t);
    const pos = new Map<string, { x: number; y: number }>();
    columns.forEach((col, c) => {
      col.sort((a, b) => a.domain.localeCompare(b.domain) || a.taskId.localeCompare(b.taskId));
      col.forEach((t, r) => pos.set(t.taskId, { x: c * (NODE_W + COL_GAP) + 8, y: r * (NODE_H + ROW_GAP) + 8 }));
    });
    const rows = Math.max(1, ...columns.map((c) => c?.length ?? 0));
    return {
      pos,
      width: Math.max(1, columns.length) * (NODE_W + COL_GAP) - COL_GAP + 16,
      height: rows * (NODE_H + ROW_GAP) - ROW_GAP + 16,
    };
  }, [shape]);

  return (
    <div className="dag-scroll">
      <svg
        className="dag"
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        data-testid="dag"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" className="edge-head" />
          </marker>
        </defs>
        {tasks.flatMap((t) =>
          t.dependsOn.map((dep) => {
            const from = layout.pos.get(dep);
            const to = layout.pos.get(t.taskId);
            if (!from || !to) return null;
            const x1 = from.x + NODE_W;
            const y1 = from.y + NODE_H / 2;
            const x2 = to.x;
            const y2 = to.y + NODE_H / 2;
            const mid = (x1 + x2) / 2;
            return (
              <path
                key={`${dep}->${t.taskId}`}
                d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}`}
                className="edge"
                markerEnd="url(#arrow)"
              />
            );
          }),
        )}
        {tasks.map((t) => {
          const p = layout.pos.get(t.taskId);
          if (!p) return null;
          const label = t.title.length > 22 ? `${t.title.slice(0, 21)}…` : t.title;
          return (
            <g
              key={t.taskId}
              transform={`translate(${p.x} ${p.y})`}
              className={`node s-${t.status.toLowerCase()} ${props.selected === t.taskId ? "selected" : ""}`}
              data-task={t.taskId}
              data-status={t.status}
              onClick={() => props.onSelect(t.taskId)}
            >
              <title>{`${t.taskId}: ${t.title}\n${t.domain}/${t.specialization ?? ""}\n${t.status} (attempt ${t.attempt})${t.worker ? `\n${t.worker}` : ""}`}</title>
              <rect width={NODE_W} height={NODE_H} rx={6} />
              {t.status === "RUNNING" && t.progress > 0 && (
                <rect
                  className="node-progress"
                  y={NODE_H - 4}
                  width={(NODE_W * Math.min(100, t.progress)) / 100}
                  height={4}
                />
              )}
              <text x={8} y={15} className="node-title">
                {label}
              </text>
              <text x={8} y={30} className="node-sub">
                {t.status.toLowerCase()} · {t.domain}
                {t.attempt > 1 ? ` · try ${t.attempt}` : ""}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
