// The dashboard's charts (uPlot, on canvas): executions per step stacked by how they ended, the
// success rate, and the duration percentiles. They are built again when the theme changes (the
// canvas has its colours) and given the new data otherwise, and follow their boxes' width.
import { useEffect, useRef } from 'react';
// Before uPlot, which reads navigator.language as it loads.
import './uplotLocale';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Dashboard } from '../api/types';
import { formatCount, formatDuration } from '../model/format';
import { dashboardCharts, stackedCount, type DashboardCharts } from '../model/monitoring';
import { useApp } from '../store/context';

/**
 * The User Timing measure of each render, from the dashboard in hand to every chart drawn with it
 * (the desktop tests' `monitoring_panel_render_ms`). The charts' box then says in `data-points`
 * how many points per series that render drew.
 */
const RENDER_MEASURE = 'monitoring-charts';

const CHART_HEIGHT = 160;

type ChartId = keyof DashboardCharts;
const CHART_IDS: readonly ChartId[] = ['executions', 'successRate', 'durations'];

type ChartOptions = Omit<uPlot.Options, 'width' | 'height'>;

interface Colors {
  text: string;
  grid: string;
  font: string;
  ok: string;
  bad: string;
  cancelled: string;
  accent: string;
  warn: string;
}

/** The theme's colours, for the canvas (which knows no CSS variables). */
function themeColors(): Colors {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string) => css.getPropertyValue(name).trim();
  return {
    text: v('--text-muted'),
    grid: v('--border'),
    font: `11px ${getComputedStyle(document.body).fontFamily}`,
    ok: v('--ok'),
    bad: v('--bad'),
    cancelled: v('--cancelled'),
    accent: v('--accent'),
    warn: v('--warn'),
  };
}

/** Whole steps only on a count axis. */
const COUNT_INCRS = Array.from({ length: 9 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

/**
 * Time ticks on a 24-hour clock, the day under the first tick and under each new day (uPlot's
 * table: tick step in seconds, its format, then the format when the year, month, day, hour,
 * minute or second changes, and 1: only the largest change shows).
 */
const TIME_TICKS: uPlot.Axis.TimeValuesConfig = [
  [86_400, '{MMM} {D}', '\n{YYYY}', null, null, null, null, null, 1],
  [60, '{HH}:{mm}', '\n{MMM} {D}', null, '\n{MMM} {D}', null, null, null, 1],
];

function axes(c: Colors, values: uPlot.Axis.DynamicValues, incrs?: number[]): uPlot.Axis[] {
  const common: uPlot.Axis = { stroke: c.text, font: c.font, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1, size: 4 } };
  return [{ ...common, values: TIME_TICKS }, { ...common, size: 64, values, incrs }];
}

const TIME: uPlot.Series = { label: 'Time', value: '{YYYY}-{MM}-{DD} {HH}:{mm}' };
// No drag to zoom: the next refresh would undo it.
const NO_ZOOM = { x: false, y: false };

function bars(label: string, color: string): uPlot.Series {
  return {
    label,
    fill: color,
    stroke: color,
    width: 0,
    paths: uPlot.paths.bars?.({ size: [0.8, 24, 1] }),
    points: { show: false },
    // The bars hold running sums; the legend gives each its own count.
    value: (u, _v, series, idx) => (idx === null ? '—' : formatCount(stackedCount(u.data, series, idx))),
  };
}

function line(label: string, color: string, value: uPlot.Series.Value): uPlot.Series {
  // Steps without executions have no value: the line spans them, and a lone value shows as a dot.
  return { label, stroke: color, width: 1.5, spanGaps: true, points: { show: true, size: 4, fill: color }, value };
}

const OPTIONS: Record<ChartId, (c: Colors) => ChartOptions> = {
  executions: (c) => ({
    cursor: { drag: NO_ZOOM, points: { show: false } },
    // The tallest bar first, each shorter one drawn over it: the legend reads the stack from the top.
    series: [TIME, bars('Cancelled', c.cancelled), bars('Failed', c.bad), bars('Succeeded', c.ok)],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: axes(c, (_u, splits) => splits.map(formatCount), COUNT_INCRS),
  }),
  successRate: (c) => ({
    cursor: { drag: NO_ZOOM },
    series: [TIME, line('Success rate', c.ok, (_u, v) => (v == null ? '—' : `${Number(v.toFixed(1))}%`))],
    scales: { y: { range: [0, 100] } },
    axes: axes(c, (_u, splits) => splits.map((v) => `${v}%`)),
  }),
  durations: (c) => {
    const value: uPlot.Series.Value = (_u, v) => formatDuration(v);
    return {
      cursor: { drag: NO_ZOOM },
      series: [TIME, line('p50', c.accent, value), line('p95', c.warn, value), line('p99', c.bad, value)],
      scales: { y: { range: (_u, _min, max) => [0, Number.isFinite(max) && max > 0 ? max : 1] } },
      axes: axes(c, (_u, splits) => splits.map(formatDuration)),
    };
  },
};

interface Plots {
  theme: string;
  byId: Record<ChartId, uPlot>;
}

/** A render under way: when it started, its points, and the charts not drawn yet. */
interface Pending {
  started: number;
  points: number;
  waiting: Set<ChartId>;
}

export function MonitoringCharts({ dashboard }: { dashboard: Dashboard }) {
  const theme = useApp((s) => s.settings.theme);
  const root = useRef<HTMLDivElement>(null);
  const boxes = useRef<Partial<Record<ChartId, HTMLDivElement>>>({});
  const plots = useRef<Plots | null>(null);
  const pending = useRef<Pending | null>(null);

  useEffect(() => {
    pending.current = { started: performance.now(), points: dashboard.points.length, waiting: new Set(CHART_IDS) };
    const data = dashboardCharts(dashboard);
    const current = plots.current;
    if (current?.theme === theme) {
      for (const id of CHART_IDS) current.byId[id].setData(data[id]);
      return;
    }
    if (current) for (const id of CHART_IDS) current.byId[id].destroy();
    const colors = themeColors();
    const drawn = (id: ChartId) => {
      const p = pending.current;
      if (!p?.waiting.delete(id) || p.waiting.size > 0) return;
      performance.measure(RENDER_MEASURE, { start: p.started, end: performance.now() });
      if (root.current) root.current.dataset.points = String(p.points);
      pending.current = null;
    };
    const make = (id: ChartId) => {
      // The boxes' ref callbacks ran before any effect.
      const box = boxes.current[id] as HTMLDivElement;
      const options: uPlot.Options = { ...OPTIONS[id](colors), width: box.clientWidth, height: CHART_HEIGHT, hooks: { draw: [() => drawn(id)] } };
      return new uPlot(options, data[id], box);
    };
    plots.current = { theme, byId: { executions: make('executions'), successRate: make('successRate'), durations: make('durations') } };
  }, [dashboard, theme]);

  // Once: the charts follow their boxes' width, and go with the component.
  useEffect(() => {
    const observer = new ResizeObserver(() => {
      for (const id of CHART_IDS) {
        const box = boxes.current[id];
        if (box) plots.current?.byId[id].setSize({ width: box.clientWidth, height: CHART_HEIGHT });
      }
    });
    for (const box of Object.values(boxes.current)) observer.observe(box);
    return () => {
      observer.disconnect();
      if (plots.current) for (const id of CHART_IDS) plots.current.byId[id].destroy();
      plots.current = null;
    };
  }, []);

  const per = dashboard.step_minutes === 1 ? 'minute' : `${dashboard.step_minutes} minutes`;
  const titles: Record<ChartId, string> = { executions: `Executions per ${per}`, successRate: 'Success rate', durations: 'Duration percentiles' };
  return (
    <div className="monitoring-charts" ref={root} data-testid="monitoring-charts">
      {CHART_IDS.map((id) => (
        <figure key={id} className={`monitoring-card chart chart-${id}`}>
          <figcaption>{titles[id]}</figcaption>
          <div
            className="chart-box"
            data-testid={`monitoring-chart-${id}`}
            ref={(el) => {
              if (el) boxes.current[id] = el;
            }}
          />
        </figure>
      ))}
    </div>
  );
}
