/** Small building blocks shared by the pages. */
import { useState, type ReactNode } from "react";
import type { ApiError } from "./api";

export function Card(props: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`card ${props.className ?? ""}`}>
      {(props.title || props.actions) && (
        <header className="card-head">
          <h2>{props.title}</h2>
          <div className="card-actions">{props.actions}</div>
        </header>
      )}
      {props.children}
    </section>
  );
}

export function Kpi(props: { label: string; value: ReactNode; hint?: string; tone?: "good" | "bad" | "warn" }) {
  return (
    <div className={`kpi ${props.tone ?? ""}`} title={props.hint}>
      <div className="kpi-value">{props.value}</div>
      <div className="kpi-label">{props.label}</div>
    </div>
  );
}

export function Badge({ status }: { status: string | null | undefined }) {
  const s = status ?? "UNKNOWN";
  return <span className={`badge s-${s.toLowerCase()}`}>{s.replace(/_/g, " ").toLowerCase()}</span>;
}

export function Progress({ value, label }: { value: number; label?: string }) {
  const pct = Math.max(0, Math.min(100, value * 100));
  return (
    <div className="progress" title={label ?? `${pct.toFixed(0)}%`}>
      <div className="progress-fill" style={{ width: `${pct}%` }} />
      <span className="progress-text">{label ?? `${pct.toFixed(0)}%`}</span>
    </div>
  );
}

export function ErrorBox({ error, title }: { error: ApiError | Error | string | null | undefined; title?: string }) {
  if (!error) return null;
  const message = typeof error === "string" ? error : error.message;
  const code = typeof error === "object" && "code" in error ? (error as ApiError).code : null;
  return (
    <div className="error" role="alert">
      {title && <strong>{title}: </strong>}
      {message}
      {code && <span className="error-code"> ({code})</span>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return <p className="muted">Loading {what}…</p>;
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>;
}

const UNITS: [number, string][] = [
  [86_400_000, "d"],
  [3_600_000, "h"],
  [60_000, "min"],
  [1_000, "s"],
];

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const ms = now - new Date(iso).getTime();
  if (ms < 1_000) return "now";
  for (const [size, unit] of UNITS) if (ms >= size) return `${Math.floor(ms / size)} ${unit} ago`;
  return "now";
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function time(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toISOString().replace("T", " ").slice(0, 19);
}

export function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? "—" : `${(v * 100).toFixed(0)}%`;
}

/** A horizontal bar per row (utilisation, status counts): plain SVG, no chart library. */
export function Bars(props: {
  rows: { label: string; value: number; max?: number; tone?: string; note?: string }[];
  format?: (v: number) => string;
  width?: number;
}) {
  const width = props.width ?? 420;
  const labelW = 170;
  const rowH = 20;
  const max = Math.max(1, ...props.rows.map((r) => r.max ?? r.value));
  const format = props.format ?? ((v: number) => String(v));
  return (
    <svg className="bars" width="100%" viewBox={`0 0 ${width} ${props.rows.length * rowH + 4}`} role="img">
      {props.rows.map((r, i) => {
        const w = ((width - labelW - 60) * r.value) / (r.max ?? max);
        return (
          <g key={r.label} transform={`translate(0 ${i * rowH + 2})`}>
            <title>{r.note ?? `${r.label}: ${format(r.value)}`}</title>
            <text x={0} y={13} className="bar-label">
              {r.label.length > 26 ? `${r.label.slice(0, 25)}…` : r.label}
            </text>
            <rect x={labelW} y={3} width={width - labelW - 60} height={12} className="bar-track" rx={2} />
            <rect x={labelW} y={3} width={Math.max(0, w)} height={12} className={`bar ${r.tone ?? ""}`} rx={2} />
            <text x={width - 54} y={13} className="bar-value">
              {format(r.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** Columns over time (throughput per hour). */
export function Columns(props: { points: { label: string; value: number; title: string }[]; height?: number }) {
  const height = props.height ?? 90;
  const n = Math.max(1, props.points.length);
  const width = 420;
  const w = width / n;
  const max = Math.max(1, ...props.points.map((p) => p.value));
  return (
    <svg className="columns" width="100%" viewBox={`0 0 ${width} ${height + 16}`} role="img">
      {props.points.map((p, i) => {
        const h = (height * p.value) / max;
        return (
          <g key={`${p.label}-${i}`}>
            <title>{p.title}</title>
            <rect x={i * w + 1} y={height - h} width={Math.max(1, w - 2)} height={h} className="bar" />
            {(i === 0 || i === n - 1 || n <= 8) && (
              <text
                x={i === 0 && n > 8 ? 0 : i === n - 1 && n > 8 ? width : i * w + w / 2}
                y={height + 12}
                className="axis"
                textAnchor={i === 0 && n > 8 ? "start" : i === n - 1 && n > 8 ? "end" : "middle"}
              >
                {p.label}
              </text>
            )}
          </g>
        );
      })}
      <line x1={0} x2={width} y1={height} y2={height} className="axis-line" />
    </svg>
  );
}

/**
 * A command button that asks first: the dialog says what will happen, takes the fields the command
 * needs, and shows the API's answer (or its refusal) before it closes.
 */
export function Confirm(props: {
  label: string;
  title: string;
  danger?: boolean;
  disabled?: boolean;
  disabledWhy?: string;
  children?: ReactNode;
  confirmLabel?: string;
  /** Runs the command; resolves with what to show on success, throws the API's error. */
  run: () => Promise<string>;
  testId?: string;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const close = () => {
    setOpen(false);
    setError(null);
    setDone(null);
  };
  return (
    <>
      <button
        className={props.danger ? "danger" : "primary"}
        disabled={props.disabled}
        title={props.disabled ? props.disabledWhy : undefined}
        onClick={() => setOpen(true)}
        data-testid={props.testId}
      >
        {props.label}
      </button>
      {open && (
        <div className="modal-back" onClick={() => !busy && close()}>
          <div className="modal" role="dialog" aria-modal="true" onClick={(e) => e.stopPropagation()}>
            <h3>{props.title}</h3>
            {props.children}
            <ErrorBox error={error} title="Refused" />
            {done && <div className="ok">{done}</div>}
            <div className="modal-actions">
              {!done && (
                <button
                  className={props.danger ? "danger" : "primary"}
                  disabled={busy}
                  data-testid={props.testId ? `${props.testId}-confirm` : undefined}
                  onClick={async () => {
                    setBusy(true);
                    setError(null);
                    try {
                      setDone(await props.run());
                    } catch (e) {
                      setError(e as Error);
                    } finally {
                      setBusy(false);
                    }
                  }}
                >
                  {busy ? "Sending…" : (props.confirmLabel ?? "Confirm")}
                </button>
              )}
              <button onClick={close} disabled={busy}>
                {done ? "Close" : "Cancel"}
              </button>
            </div>
          </div>
        </div>
      )}
    </>
  );
}
