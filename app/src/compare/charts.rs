//! The comparison's SVG charts (plotters, SVG backend only: no fonts or C libraries needed).
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::StrategyReport;
use crate::session::MAX_COOKIE_BYTES;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const PALETTE: [RGBColor; 9] = [
    BLUE,
    ORANGE,
    GREEN,
    RED,
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

pub fn draw(reports: &[StrategyReport], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let names: Vec<String> = reports.iter().map(|r| r.strategy.to_string()).collect();
    let mut files = Vec::new();

    let path = dir.join("latency.svg");
    let t = |f: &dyn Fn(&StrategyReport) -> f64| reports.iter().map(f).collect::<Vec<_>>();
    grouped_bars(
        &path,
        "Latency at 32 clients through HAProxy (ms)",
        &names,
        &[
            ("read p50", t(&|r| r.throughput.read_32.p50_ms), BLUE),
            ("read p99", t(&|r| r.throughput.read_32.p99_ms), RGBColor(120, 170, 220)),
            ("write p50", t(&|r| r.throughput.write_32.p50_ms), ORANGE),
            ("write p99", t(&|r| r.throughput.write_32.p99_ms), RGBColor(255, 190, 120)),
        ],
    )?;
    files.push(path);

    let path = dir.join("ops-per-request.svg");
    grouped_bars(
        &path,
        "Session-store operations per request",
        &names,
        &[
            ("read, app-counted", t(&|r| r.throughput.app_calls_per_read), BLUE),
            ("read, store-counted", t(&|r| r.throughput.store_ops_per_read.unwrap_or(0.0)), RGBColor(120, 170, 220)),
            ("write, app-counted", t(&|r| r.throughput.app_calls_per_write), ORANGE),
            ("write, store-counted", t(&|r| r.throughput.store_ops_per_write.unwrap_or(0.0)), RGBColor(255, 190, 120)),
        ],
    )?;
    files.push(path);

    // The n-th store restart of each strategy, as the percentage of sessions it kept.
    let restart = |n: usize| {
        t(&|r: &StrategyReport| r.store_restarts.get(n).map_or(0.0, |s| kept(s.chaos.sessions_lost, s.chaos.users)))
    };
    let path = dir.join("survival.svg");
    grouped_bars(
        &path,
        "Sessions kept (%): a replica killed, the store restarted",
        &names,
        &[
            ("replica killed", t(&|r| kept(r.replica_kill.sessions_lost, r.replica_kill.users)), GREEN),
            ("store restarted; Redis with its append-only file (none: no store)", restart(0), RED),
            ("store restarted; Redis without persistence", restart(1), RGBColor(150, 40, 40)),
        ],
    )?;
    files.push(path);

    let path = dir.join("cookie-size.svg");
    cookie_sizes(&path, reports)?;
    files.push(path);
    Ok(files)
}

/// Percent of `users` whose session survived.
fn kept(lost: usize, users: usize) -> f64 {
    100.0 * (users - lost.min(users)) as f64 / users.max(1) as f64
}

fn grouped_bars(
    path: &Path,
    title: &str,
    categories: &[String],
    series: &[(&str, Vec<f64>, RGBColor)],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    // Headroom above the tallest bar for the legend.
    let top = series.iter().flat_map(|(_, values, _)| values.iter().copied()).fold(0.0_f64, f64::max).max(1e-9) * 1.45;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..categories.len() as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(categories.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let index = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                categories.get(index).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()?;
    let width = 0.8 / series.len() as f64;
    for (n, (label, values, color)) in series.iter().enumerate() {
        let color = *color;
        chart
            .draw_series(values.iter().enumerate().map(|(i, value)| {
                let x = i as f64 + 0.1 + n as f64 * width;
                Rectangle::new([(x, 0.0), (x + width * 0.9, *value)], color.filled())
            }))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

fn cookie_sizes(path: &Path, reports: &[StrategyReport]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let lines = reports.iter().flat_map(|r| r.cookie.points.iter().map(|p| p.0)).max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Session cookie size as the cart grows (bytes)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..lines, 0.0..(MAX_COOKIE_BYTES as f64 * 1.1))?;
    chart.configure_mesh().x_desc("cart lines").draw()?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, MAX_COOKIE_BYTES as f64), (lines, MAX_COOKIE_BYTES as f64)],
            RED.stroke_width(2),
        ))?
        .label("4096: browsers drop larger cookies")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED.stroke_width(2)));
    for (report, color) in reports.iter().zip(PALETTE.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(report.cookie.points.iter().map(|(l, b)| (*l as f64, *b as f64)), color))?
            .label(report.strategy.to_string())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color));
    }
    legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
    root.present()?;
    Ok(())
}

type Chart<'a> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn legend(chart: &mut Chart<'_>, position: SeriesLabelPosition) -> anyhow::Result<()> {
    chart.configure_series_labels().position(position).background_style(WHITE.mix(0.9)).border_style(BLACK).draw()?;
    Ok(())
}
