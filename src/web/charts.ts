/** Time-series line charts (uPlot) that fill their container's width and take their colours from the theme's CSS variables. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const HEIGHT = 200;

/** Axis steps for whole numbers: 1, 2, 5, 10, 20, 50 … */
const WHOLE_STEPS = Array.from({ length: 16 }, (_, i) => [1, 2, 5].map((m) => m * 10 ** i)).flat();

/** A colour of the current theme (styles.css: --text, --muted, --grid, --series-0 … --series-5). */
const color = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export class LineChart {
  private readonly plot: uPlot;
  private readonly resize: ResizeObserver;

  /** Colours are read once: a theme change makes a new chart (see the dashboard). */
  /** `whole`: the values are counts or bytes, so the axis marks only whole numbers. */
  constructor(box: HTMLElement, labels: string[], format: (v: number) => string, whole = false) {
    const axis: uPlot.Axis = {
      stroke: color('--muted'),
      grid: { stroke: color('--grid'), width: 1 },
      ticks: { stroke: color('--grid'), width: 1 },
    };
    const options: uPlot.Options = {
      width: Math.max(box.clientWidth, 200),
      height: HEIGHT,
      series: [
        { value: (_u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleTimeString()) },
        ...labels.map((label, i): uPlot.Series => ({
          label,
          stroke: color(`--series-${i % 6}`),
          width: 2,
          points: { show: false },
          value: (_u, v) => (v == null ? '—' : format(v)),
        })),
      ],
      // Counts and sizes start at 0, so a flat line near 0 does not look like a cliff.
      // At least the last 5 minutes across, so the first samples do not stretch over the whole width.
      scales: {
        // With no samples yet uPlot passes nulls: show the last 5 minutes rather than 1970 or the years ahead.
        x: {
          time: true,
          range: (_u, min, max) => {
            const end = max ?? Date.now() / 1000;
            return [Math.min(min ?? end, end - 300), end];
          },
        },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [axis, { ...axis, size: 72, values: (_u, ticks) => ticks.map(format), ...(whole ? { incrs: WHOLE_STEPS } : {}) }],
    };
    this.plot = new uPlot(options, [[], ...labels.map(() => [])], box);
    this.resize = new ResizeObserver(() => this.plot.setSize({ width: Math.max(box.clientWidth, 200), height: HEIGHT }));
    this.resize.observe(box);
  }

  /** x: Unix seconds; one array per label, null for no value (drawn as a gap). */
  setData(data: uPlot.AlignedData): void {
    this.plot.setData(data);
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot.destroy();
  }
}
