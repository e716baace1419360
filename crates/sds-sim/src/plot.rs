//! SVG plots of a report: delivery completeness over time and the delivery
//! latency distribution (plotters, SVG backend; text is emitted as SVG
//! `<text>`, so no system fonts are needed).

use crate::report::Report;
use plotters::prelude::*;

/// A plot that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(String);

fn err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError(e.to_string())
}

/// Renders the plots as an SVG document.
pub fn render_svg(report: &Report) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = format!(
            "SDS simulation \"{}\" (seed {}, {} participants)",
            report.scenario, report.seed, report.participants
        );
        let root = root.titled(&title, ("sans-serif", 22)).map_err(err)?;
        let (left, right) = root.split_horizontally(600);

        // Delivery over time.
        let t_max = report
            .timeline
            .last()
            .map(|s| s.t_s)
            .unwrap_or(1.0)
            .max(1.0);
        let y_min = report
            .timeline
            .iter()
            .map(|s| s.ratio)
            .fold(1.0f64, f64::min)
            .clamp(0.0, 1.0);
        let y_lo = ((y_min * 100.0 - 1.0).floor().max(0.0)) / 100.0;
        let mut chart = ChartBuilder::on(&left)
            .caption("Delivery completeness over time", ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, (y_lo * 100.0)..100.5)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("delivered pairs (%)")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                report.timeline.iter().map(|s| (s.t_s, s.ratio * 100.0)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        let heal = report.settings.heal_s;
        if heal > 0.0 && heal <= t_max {
            chart
                .draw_series(LineSeries::new(
                    [(heal, y_lo * 100.0), (heal, 100.5)],
                    RED.stroke_width(1),
                ))
                .map_err(err)?
                .label("heal")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(err)?;
        }

        // Latency histogram.
        let buckets = &report.latency_histogram;
        let x_max = buckets.last().map(|b| b.hi_ms).unwrap_or(1).max(1) as f64 / 1000.0;
        let c_max = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
        let mut chart = ChartBuilder::on(&right)
            .caption("Delivery latency (send -> delivered)", ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..c_max * 1.05)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("latency (s); last bar: above p99")
            .y_desc("deliveries")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(buckets.iter().map(|b| {
                Rectangle::new(
                    [
                        (b.lo_ms as f64 / 1000.0, 0.0),
                        (b.hi_ms as f64 / 1000.0, b.count as f64),
                    ],
                    GREEN.mix(0.6).filled(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Writes the plots to `path` as SVG.
pub fn write_svg(report: &Report, path: &std::path::Path) -> Result<(), PlotError> {
    let svg = render_svg(report)?;
    std::fs::write(path, svg)
        .map_err(|e| PlotError(format!("cannot write {}: {e}", path.display())))
}
