/**
 * A small SVG writer for `npm run bench`: line panels (median with min–max whiskers, x values
 * evenly spaced as categories, which for 1/2/4 and 10/100/1000 is a log scale) and a horizontal
 * bar panel (ratios to a baseline, with target marks). Written by hand; no dependencies.
 */

export interface Point {
  x: number | string;
  median: number;
  min?: number;
  max?: number;
}

export interface Series {
  name: string;
  points: Point[];
}

export interface LinePanel {
  kind: "line";
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

export interface Bar {
  label: string;
  value: number;
  /** A mark at this value (the target ratio). */
  target?: number;
  min?: number;
  max?: number;
}

export interface BarPanel {
  kind: "bars";
  title: string;
  xLabel: string;
  bars: Bar[];
}

export type Panel = LinePanel | BarPanel;

const W = 520;
const H = 330;
const M = { left: 64, right: 20, top: 40, bottom: 52 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const f = (x: number) => (Math.round(x * 10) / 10).toString();

/** A round upper bound and its tick step. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { top: 1, step: 0.2 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

const label = (v: number) =>
  Math.abs(v) >= 10_000 ? `${f(v / 1000)}k` : Math.abs(v) >= 10 ? Math.round(v).toLocaleString("en") : f(v);

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${f(x)}" y="${f(y)}" ${attrs}>${esc(s)}</text>`;
}

function frame(title: string): string[] {
  return [
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff" stroke="#ddd"/>`,
    text(W / 2, 22, title, 'text-anchor="middle" font-size="14" font-weight="bold"'),
  ];
}

function linePanel(p: LinePanel): string[] {
  const out = frame(p.title);
  const xs = [...new Set(p.series.flatMap((s) => s.points.map((pt) => String(pt.x))))];
  const values = p.series.flatMap((s) => s.points.flatMap((pt) => [pt.median, pt.max ?? pt.median]));
  const { top, step } = niceScale(Math.max(0, ...values.filter(Number.isFinite)));
  const [x0, x1, y0, y1] = [M.left, W - M.right, H - M.bottom, M.top];
  const px = (x: string) =>
    xs.length <= 1 ? (x0 + x1) / 2 : x0 + 30 + ((x1 - x0 - 60) * xs.indexOf(x)) / (xs.length - 1);
  const py = (v: number) => y0 - ((y0 - y1) * v) / top;
  for (let v = 0; v <= top + step / 2; v += step) {
    out.push(`<line x1="${x0}" x2="${x1}" y1="${f(py(v))}" y2="${f(py(v))}" stroke="#eee"/>`);
    out.push(text(x0 - 6, py(v) + 4, label(v), 'text-anchor="end" font-size="11" fill="#555"'));
  }
  out.push(`<line x1="${x0}" x2="${x0}" y1="${y1}" y2="${y0}" stroke="#888"/>`);
  out.push(`<line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#888"/>`);
  for (const x of xs) out.push(text(px(x), y0 + 16, x, 'text-anchor="middle" font-size="11" fill="#555"'));
  out.push(text((x0 + x1) / 2, H - 12, p.xLabel, 'text-anchor="middle" font-size="12"'));
  out.push(
    text(
      16,
      (y0 + y1) / 2,
      p.yLabel,
      `text-anchor="middle" font-size="12" transform="rotate(-90 16 ${f((y0 + y1) / 2)})"`,
    ),
  );
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.filter((pt) => Number.isFinite(pt.median));
    if (pts.length > 1) {
      const d = pts.map((pt, j) => `${j ? "L" : "M"}${f(px(String(pt.x)))},${f(py(pt.median))}`).join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    for (const pt of pts) {
      const cx = px(String(pt.x));
      if (pt.min !== undefined && pt.max !== undefined) {
        const [a, b] = [py(pt.min), py(pt.max)];
        out.push(`<line x1="${f(cx)}" x2="${f(cx)}" y1="${f(a)}" y2="${f(b)}" stroke="${color}"/>`);
        for (const y of [a, b])
          out.push(`<line x1="${f(cx - 4)}" x2="${f(cx + 4)}" y1="${f(y)}" y2="${f(y)}" stroke="${color}"/>`);
      }
      out.push(`<circle cx="${f(cx)}" cy="${f(py(pt.median))}" r="3.5" fill="${color}"/>`);
      out.push(text(cx + 6, py(pt.median) - 6, label(pt.median), `font-size="10" fill="${color}"`));
    }
    // Legend, top left inside the plot.
    const ly = y1 + 6 + i * 16;
    out.push(`<line x1="${x0 + 10}" x2="${x0 + 28}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(text(x0 + 32, ly + 4, s.name, 'font-size="11"'));
  });
  return out;
}

function barPanel(p: BarPanel): string[] {
  const out = frame(p.title);
  const [x0, x1, y1] = [M.left + 110, W - M.right - 24, M.top + 6];
  const values = p.bars.flatMap((b) => [b.value, b.target ?? 0, b.max ?? 0]).filter(Number.isFinite);
  const { top, step } = niceScale(Math.max(1, ...values));
  const px = (v: number) => x0 + ((x1 - x0) * v) / top;
  const rowH = Math.min(26, (H - M.bottom - y1) / Math.max(1, p.bars.length));
  const y0 = y1 + rowH * p.bars.length;
  for (let v = 0; v <= top + step / 2; v += step) {
    out.push(`<line x1="${f(px(v))}" x2="${f(px(v))}" y1="${y1}" y2="${f(y0)}" stroke="#eee"/>`);
    out.push(text(px(v), y0 + 14, label(v), 'text-anchor="middle" font-size="11" fill="#555"'));
  }
  out.push(`<line x1="${f(px(1))}" x2="${f(px(1))}" y1="${y1}" y2="${f(y0)}" stroke="#999" stroke-dasharray="4 3"/>`);
  out.push(text((x0 + x1) / 2, H - 12, p.xLabel, 'text-anchor="middle" font-size="12"'));
  p.bars.forEach((b, i) => {
    const y = y1 + i * rowH;
    const ok = b.target === undefined || b.value >= b.target;
    const color = Number.isFinite(b.value) ? (ok ? "#2ca02c" : "#d62728") : "#bbb";
    out.push(text(x0 - 6, y + rowH / 2 + 4, b.label, 'text-anchor="end" font-size="11"'));
    if (Number.isFinite(b.value)) {
      out.push(
        `<rect x="${x0}" y="${f(y + 4)}" width="${f(px(b.value) - x0)}" height="${f(rowH - 8)}" fill="${color}" opacity="0.8"/>`,
      );
      out.push(text(px(b.value) + 4, y + rowH / 2 + 4, b.value.toFixed(2), 'font-size="10"'));
    } else out.push(text(x0 + 4, y + rowH / 2 + 4, "not measured", 'font-size="10" fill="#888"'));
    if (b.min !== undefined && b.max !== undefined && Number.isFinite(b.min) && Number.isFinite(b.max)) {
      const cy = y + rowH / 2;
      out.push(`<line x1="${f(px(b.min))}" x2="${f(px(b.max))}" y1="${f(cy)}" y2="${f(cy)}" stroke="#333"/>`);
    }
    if (b.target !== undefined) {
      const tx = px(b.target);
      out.push(
        `<line x1="${f(tx)}" x2="${f(tx)}" y1="${f(y + 2)}" y2="${f(y + rowH - 2)}" stroke="#000" stroke-width="2"/>`,
      );
    }
  });
  return out;
}

/** Panels in a grid of `columns`, with a title and a caption line under it. */
export function svgChart(title: string, caption: string, panels: Panel[], columns = 2): string {
  const rows = Math.ceil(panels.length / columns);
  const [width, head] = [columns * (W + 10) + 10, 56];
  const height = head + rows * (H + 10) + 10;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fafafa"/>`,
    text(10, 24, title, 'font-size="16" font-weight="bold"'),
    text(10, 44, caption, 'font-size="11" fill="#555"'),
  ];
  panels.forEach((p, i) => {
    const [x, y] = [10 + (i % columns) * (W + 10), head + Math.floor(i / columns) * (H + 10)];
    out.push(`<g transform="translate(${x} ${y})">`, ...(p.kind === "line" ? linePanel(p) : barPanel(p)), "</g>");
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
