//! Vector bar and line charts.
//!
//! A chart block is a title, an optional legend (more than one series), a
//! value axis with "nice" gridlines and labels, and category labels that are
//! thinned out when they would collide.

use super::axis::{Axis, format_tick, label_step};
use super::canvas::{Align, Canvas, Rgb8, TextStyle};
use super::layout::{CONTENT_WIDTH, Flow, MARGIN_X, theme};
use super::model::{Chart, ChartKind};
use super::text::{Face, Weight};

/// Total height of a chart block, title and labels included.
pub const CHART_HEIGHT: f32 = 220.0;
const TITLE_SIZE: f32 = 11.0;
const LABEL_SIZE: f32 = 7.0;
const LEGEND_SIZE: f32 = 8.0;

/// An area on the page: top-left corner plus size, in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Draws `chart` as the next block of `flow`.
pub fn draw(flow: &mut Flow<'_>, chart: &Chart) {
    flow.ensure(CHART_HEIGHT);
    let frame = Frame { x: MARGIN_X, y: flow.y(), w: CONTENT_WIDTH, h: CHART_HEIGHT - 16.0 };
    draw_in(flow.canvas(), chart, frame);
    flow.advance(CHART_HEIGHT);
}

/// Draws `chart` inside `frame`.
pub fn draw_in(canvas: &mut Canvas<'_>, chart: &Chart, frame: Frame) {
    let title_face = canvas.book().face(Weight::Bold);
    let title = title_face.fit(&chart.title, TITLE_SIZE, frame.w);
    let title_style = TextStyle::new(Weight::Bold, TITLE_SIZE, theme::TEXT);
    canvas.text(frame.x, frame.y + TITLE_SIZE, &title, title_style, Align::Left);
    let mut top = frame.y + TITLE_SIZE + 8.0;
    if chart.series.len() > 1 {
        top += draw_legend(canvas, chart, frame, top + LEGEND_SIZE) + 2.0;
    }
    let body = Frame { x: frame.x, y: top, w: frame.w, h: frame.y + frame.h - top };
    match value_range(chart) {
        Some((lo, hi)) => draw_plot(canvas, chart, body, lo, hi),
        None => {
            let style = TextStyle::new(Weight::Regular, 9.0, theme::MUTED);
            canvas.text(body.x + body.w / 2.0, body.y + body.h / 2.0, "No data", style, Align::Center);
        }
    }
}

/// Min and max over all finite values, widened to include zero for bars
/// and for lines whose values are all non-negative.
fn value_range(chart: &Chart) -> Option<(f64, f64)> {
    let n = chart.labels.len();
    let values = chart.series.iter().flat_map(|s| s.values.iter().take(n));
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, &v| Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v)))))?;
    let include_zero = chart.kind == ChartKind::Bar || lo >= 0.0;
    Some(if include_zero { (lo.min(0.0), hi.max(0.0)) } else { (lo, hi) })
}

/// Draws the legend from `baseline` down, wrapping onto more rows when
/// needed; returns the height used.
fn draw_legend(canvas: &mut Canvas<'_>, chart: &Chart, frame: Frame, baseline: f32) -> f32 {
    const SWATCH: f32 = 8.0;
    const ROW: f32 = LEGEND_SIZE + 6.0;
    let face = canvas.book().face(Weight::Regular);
    let style = TextStyle::new(Weight::Regular, LEGEND_SIZE, theme::TEXT);
    let (mut x, mut y) = (frame.x, baseline);
    for (i, series) in chart.series.iter().enumerate() {
        let name = face.fit(&series.name, LEGEND_SIZE, 140.0);
        let width = SWATCH + 4.0 + face.width(&name, LEGEND_SIZE);
        if x > frame.x && x + width > frame.x + frame.w {
            (x, y) = (frame.x, y + ROW);
        }
        canvas.fill_rect(x, y - SWATCH + 0.5, SWATCH, SWATCH, series_color(i));
        canvas.text(x + SWATCH + 4.0, y, &name, style, Align::Left);
        x += width + 14.0;
    }
    y - baseline + ROW
}

fn series_color(index: usize) -> Rgb8 {
    theme::SERIES[index % theme::SERIES.len()]
}

fn draw_plot(canvas: &mut Canvas<'_>, chart: &Chart, body: Frame, lo: f64, hi: f64) {
    let axis = Axis::nice(lo, hi);
    let face = canvas.book().face(Weight::Regular);
    let magnitude = axis.min.abs().max(axis.max.abs());
    let tick_labels: Vec<String> = axis.ticks().iter().map(|&t| format_tick(t, axis.step, magnitude)).collect();
    let gutter = tick_labels.iter().map(|l| face.width(l, LABEL_SIZE)).fold(0.0, f32::max) + 6.0;
    let plot = Frame {
        x: body.x + gutter,
        y: body.y + LABEL_SIZE / 2.0,
        w: body.w - gutter,
        h: body.h - LABEL_SIZE / 2.0 - (LABEL_SIZE + 8.0),
    };
    draw_grid(canvas, &axis, &tick_labels, plot);
    match chart.kind {
        ChartKind::Bar => draw_bars(canvas, chart, &axis, plot),
        ChartKind::Line => draw_lines(canvas, chart, &axis, plot),
    }
    let baseline = value_y(&axis, 0f64.clamp(axis.min, axis.max), plot);
    canvas.line((plot.x, baseline), (plot.x + plot.w, baseline), 0.8, theme::MUTED);
    draw_category_labels(canvas, face, &chart.labels, plot);
}

fn draw_grid(canvas: &mut Canvas<'_>, axis: &Axis, labels: &[String], plot: Frame) {
    let style = TextStyle::new(Weight::Regular, LABEL_SIZE, theme::MUTED);
    for (tick, label) in axis.ticks().into_iter().zip(labels) {
        let y = value_y(axis, tick, plot);
        canvas.line((plot.x, y), (plot.x + plot.w, y), 0.5, theme::GRID);
        canvas.text(plot.x - 4.0, y + LABEL_SIZE * 0.35, label, style, Align::Right);
    }
}

/// Page y of `value` inside `plot`.
fn value_y(axis: &Axis, value: f64, plot: Frame) -> f32 {
    plot.y + plot.h - axis.fraction(value) * plot.h
}

/// x of the center of category `index` out of `count`.
fn slot_center(plot: Frame, index: usize, count: usize) -> f32 {
    plot.x + (index as f32 + 0.5) * plot.w / count as f32
}

fn draw_bars(canvas: &mut Canvas<'_>, chart: &Chart, axis: &Axis, plot: Frame) {
    let count = chart.labels.len();
    let slot = plot.w / count as f32;
    let group = slot * 0.8;
    let bar = group / chart.series.len() as f32;
    let inset = if bar > 4.0 { 0.6 } else { 0.0 };
    let zero = value_y(axis, 0f64.clamp(axis.min, axis.max), plot);
    for (s, series) in chart.series.iter().enumerate() {
        for (i, &value) in series.values.iter().take(count).enumerate() {
            if !value.is_finite() {
                continue;
            }
            let x = slot_center(plot, i, count) - group / 2.0 + s as f32 * bar + inset;
            let y = value_y(axis, value, plot);
            let (top, height) = if y < zero { (y, zero - y) } else { (zero, y - zero) };
            canvas.fill_rect(x, top, bar - 2.0 * inset, height, series_color(s));
        }
    }
}

fn draw_lines(canvas: &mut Canvas<'_>, chart: &Chart, axis: &Axis, plot: Frame) {
    let count = chart.labels.len();
    let markers = count <= 40;
    for (s, series) in chart.series.iter().enumerate() {
        let color = series_color(s);
        let points: Vec<Option<(f32, f32)>> = series
            .values
            .iter()
            .take(count)
            .enumerate()
            .map(|(i, &v)| v.is_finite().then(|| (slot_center(plot, i, count), value_y(axis, v, plot))))
            .collect();
        // Missing values break the line into segments.
        for segment in points.split(Option::is_none) {
            let segment: Vec<(f32, f32)> = segment.iter().flatten().copied().collect();
            canvas.polyline(&segment, 1.6, color);
        }
        if markers {
            for &(x, y) in points.iter().flatten() {
                let r = 2.2;
                canvas.polygon(&[(x, y - r), (x + r, y), (x, y + r), (x - r, y)], color);
            }
        }
    }
}

/// Category labels under the plot, every `step`-th one when they would overlap.
fn draw_category_labels(canvas: &mut Canvas<'_>, face: &Face, labels: &[String], plot: Frame) {
    const GAP: f32 = 6.0;
    const MAX_LABEL: f32 = 90.0;
    let count = labels.len();
    let slot = plot.w / count as f32;
    let widest = labels.iter().map(|l| face.width(l, LABEL_SIZE).min(MAX_LABEL)).fold(0.0, f32::max);
    let step = label_step(widest + GAP, slot);
    let room = (step as f32 * slot - GAP).min(MAX_LABEL);
    let style = TextStyle::new(Weight::Regular, LABEL_SIZE, theme::MUTED);
    let baseline = plot.y + plot.h + LABEL_SIZE + 5.0;
    for (i, label) in labels.iter().enumerate().step_by(step) {
        let x = slot_center(plot, i, count);
        let text = face.fit(label, LABEL_SIZE, room);
        canvas.line((x, plot.y + plot.h), (x, plot.y + plot.h + 3.0), 0.5, theme::MUTED);
        canvas.text(x, baseline, &text, style, Align::Center);
    }
}
