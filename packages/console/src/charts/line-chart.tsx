/** One line of a chart: a value per time slot, undefined where nothing was measured (a gap). */
export interface Line {
  name: string;
  values: (number | undefined)[];
}

const WIDTH = 300;
const HEIGHT = 100;

/**
 * A small SVG line chart (no library): lines over the same time slots, scaled to the largest value.
 * The SVG is an image with a summary of the latest values as its name; the legend and the table
 * under it carry the same figures as text (docs/console.md "Live view").
 */
export function LineChart({ title, lines, slots, format, unit }: { title: string; lines: Line[]; slots: number; format: (value: number) => string; unit: string }) {
  const max = niceMax(Math.max(0, ...lines.flatMap((line) => line.values.filter((value): value is number => value !== undefined))));
  const x = (i: number) => (slots <= 1 ? WIDTH : (i * WIDTH) / (slots - 1));
  const y = (value: number) => HEIGHT - (value / max) * HEIGHT;
  const shown = (values: (number | undefined)[]) => {
    const value = values[values.length - 1];
    return value === undefined ? '—' : format(value);
  };
  const latest = lines.map((line) => `${line.name} ${shown(line.values)}`).join(', ');
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div class="chart-plot">
        <span class="chart-max" aria-hidden="true">
          {format(max)} {unit}
        </span>
        <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} preserveAspectRatio="none" role="img" aria-label={`${title}, latest: ${latest || 'no data yet'}`}>
          <line class="chart-axis" x1="0" y1={HEIGHT} x2={WIDTH} y2={HEIGHT} vector-effect="non-scaling-stroke" />
          <line class="chart-grid" x1="0" y1={HEIGHT / 2} x2={WIDTH} y2={HEIGHT / 2} vector-effect="non-scaling-stroke" />
          {lines.map((line, index) => {
            const offset = slots - line.values.length;
            const d = path(line.values.map((value, i) => (value === undefined ? undefined : [x(i + offset), y(value)])));
            return d ? <path key={line.name} class={`chart-line series-${index % 6}`} d={d} vector-effect="non-scaling-stroke" /> : null;
          })}
        </svg>
      </div>
      <ul class="chart-legend">
        {lines.map((line, index) => (
          <li key={line.name}>
            <span class={`swatch series-${index % 6}`} aria-hidden="true" />
            {line.name} <strong>{shown(line.values)}</strong>
          </li>
        ))}
      </ul>
    </figure>
  );
}

/** `M x y L x y …`, starting a new segment after each gap; a lone point is drawn as a dot (`h0` with round caps). */
function path(points: ([number, number] | undefined)[]): string {
  let d = '';
  let run = 0;
  for (const point of points) {
    if (!point) {
      if (run === 1) d += 'h0';
      run = 0;
      continue;
    }
    d += `${run > 0 ? 'L' : 'M'}${point[0].toFixed(1)} ${point[1].toFixed(1)}`;
    run++;
  }
  if (run === 1) d += 'h0';
  return d;
}

/** A round top for the scale (1, 2, 5 × 10^n), so the axis label reads well. */
export function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}
