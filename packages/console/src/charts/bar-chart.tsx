export interface Bar {
  name: string;
  value: number;
  /** Shown after the value, e.g. the current rate. */
  note?: string;
}

/**
 * Horizontal SVG bars (no library), one per name, scaled to the largest. Each bar's figure is text
 * beside it, so nothing is conveyed by length alone.
 */
export function BarChart({ title, bars, empty }: { title: string; bars: Bar[]; empty: string }) {
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? <p class="hint">{empty}</p> : null}
      <ul class="bars">
        {bars.map((bar, index) => (
          <li key={bar.name}>
            <span class="bar-name">{bar.name}</span>
            <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" class="bar-track">
              <rect class={`bar series-${index % 6}`} x="0" y="0" height="10" width={(bar.value / max) * 100} />
            </svg>
            <span class="bar-value">
              {bar.value}
              {bar.note ? <span class="hint"> {bar.note}</span> : null}
            </span>
          </li>
        ))}
      </ul>
    </figure>
  );
}
