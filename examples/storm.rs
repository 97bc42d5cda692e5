//! A retry storm, simulated: many callers, one dependency that falls over, open-loop
//! arrivals; no retry, naive retry, backoff with jitter, a `TpsBudget`-style budget and
//! seawall's budget, side by side.
//!
//! ```text
//! cargo run --example storm                 # the table at 100, 1,000 and 10,000 requests/s
//! cargo run --example storm -- --full       # every rate from 100 to 10,000, p up to 0.3
//! cargo run --example storm --features plot # also draws docs/storm.png (1,000 requests/s)
//! cargo run --example storm --features plot -- --plot other.png
//! ```
//!
//! Each run is 2 s of healthy traffic, a 4 s outage (every call fails, or each fails with
//! probability `p`), then 3 s healthy again; successes take 20 ms, failures 5 ms. The
//! simulation is a discrete-event loop on a test clock that drives seawall's real
//! `RetryBudget` and `Backoff` (`tests/common/storm_sim.rs`; `tests/storm.rs` asserts the
//! goals on it and checks it against the real `Retry` on paused tokio time). It is
//! deterministic: the same command prints the same table and draws the same picture.
//!
//! The columns: the load on the dependency during the outage over the offered load; the
//! highest load of one 100 ms interval over its offered load, from the outage's start on;
//! the requests that succeeded; the share of the requests whose first attempt failed that
//! still succeeded; how long after the outage the load of a 100 ms interval stays more than
//! 5 % (and more than one call) off its offered load.

#[path = "../tests/common/storm_sim.rs"]
mod sim;

use sim::{Failure, Scenario, Strategy};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--full");
    let plot_to = args
        .iter()
        .position(|a| a == "--plot")
        .and_then(|i| args.get(i + 1).cloned());

    let (rates, failures): (&[u32], &[Failure]) = if full {
        (
            &[100, 200, 500, 1000, 2000, 5000, 10_000],
            &[
                Failure::Total,
                Failure::Partial(0.05),
                Failure::Partial(0.1),
                Failure::Partial(0.2),
                Failure::Partial(0.3),
            ],
        )
    } else {
        (
            &[100, 1000, 10_000],
            &[Failure::Total, Failure::Partial(0.3)],
        )
    };
    for &rate in rates {
        for &failure in failures {
            let what = match failure {
                Failure::Total => "total outage (every call fails)".to_string(),
                Failure::Partial(p) => format!("partial outage (each call fails with p = {p})"),
            };
            println!("\n{rate} requests/s, {what}, 4 s\n\n{}", sim::HEADER);
            let scenario = Scenario::new(rate, failure);
            for strategy in Strategy::ALL {
                println!("{}", sim::row(&sim::run(&scenario, strategy)));
            }
        }
    }
    if full {
        // The failure streak bounds each budget: many clients with a budget each get
        // `failure_streak` retries apiece at the onset of a total outage.
        // "custom settings": a strict budget (a streak of one, a floor of one a second)
        // bounds the fleet's onset better, at the partial outage's expense.
        fn strict() -> seawall::retry::BudgetBuilder {
            seawall::retry::RetryBudget::builder()
                .failure_streak(1)
                .min_per_sec(1)
        }
        for clients in [10, 100] {
            for failure in [Failure::Total, Failure::Partial(0.3)] {
                let scenario = Scenario {
                    clients,
                    ..Scenario::new(1000, failure)
                };
                let what = match failure {
                    Failure::Total => "total outage".to_string(),
                    Failure::Partial(p) => format!("partial outage (p = {p})"),
                };
                println!(
                    "\n1000 requests/s from {clients} clients with a budget each, {what}, 4 s \
                     (custom settings: failure_streak(1).min_per_sec(1))\n\n{}",
                    sim::HEADER
                );
                for strategy in [
                    Strategy::TpsBudget,
                    Strategy::Seawall,
                    Strategy::SeawallWith(strict),
                ] {
                    println!("{}", sim::row(&sim::run(&scenario, strategy)));
                }
            }
        }
    }
    plot(plot_to);
}

#[cfg(not(feature = "plot"))]
fn plot(to: Option<String>) {
    if to.is_some() {
        eprintln!("--plot needs the `plot` feature: cargo run --example storm --features plot");
    }
}

#[cfg(feature = "plot")]
fn plot(to: Option<String>) {
    let path = to.unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/docs/storm.png").into());
    match picture::draw(&path) {
        Ok(()) => println!("\nplot written to {path}"),
        Err(e) => {
            eprintln!("could not draw {path}: {e}");
            std::process::exit(1);
        }
    }
}

/// The plot: offered load and load on the dependency over time, one line per strategy, for a
/// total and a partial outage at 1,000 requests/s. Labels are drawn with a 5x7 pixel font of
/// our own, so that no font, system or bundled, is needed.
#[cfg(feature = "plot")]
mod picture {
    use super::sim::{self, Failure, Scenario, Strategy};
    use plotters::prelude::*;

    const WIDTH: u32 = 1000;
    const PANEL: u32 = 380;
    const RATE: u32 = 1000;

    type Error = Box<dyn std::error::Error>;

    pub fn draw(path: &str) -> Result<(), Error> {
        let mut pixels = vec![255u8; (WIDTH * PANEL * 2 * 3) as usize];
        {
            let root =
                BitMapBackend::with_buffer(&mut pixels, (WIDTH, PANEL * 2)).into_drawing_area();
            root.fill(&WHITE)?;
            let (top, bottom) = root.split_vertically(PANEL);
            panel(
                &top,
                Failure::Total,
                "TOTAL OUTAGE AT 1000 REQUESTS/S: EVERY CALL FAILS FROM 2 S TO 6 S",
            )?;
            panel(
                &bottom,
                Failure::Partial(0.3),
                "PARTIAL OUTAGE AT 1000 REQUESTS/S: EACH CALL FAILS WITH P = 0.3 FROM 2 S TO 6 S",
            )?;
            root.present()?;
        }
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut encoder = png::Encoder::new(file, WIDTH, PANEL * 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.write_header()?.write_image_data(&pixels)?;
        Ok(())
    }

    fn color(strategy: Strategy) -> RGBColor {
        match strategy {
            Strategy::Naive => RGBColor(214, 39, 40),
            Strategy::Backoff => RGBColor(255, 127, 14),
            Strategy::TpsBudget => RGBColor(148, 103, 189),
            Strategy::SeawallThrottled => RGBColor(44, 160, 44),
            _ => RGBColor(31, 119, 180),
        }
    }

    fn panel<DB: DrawingBackend>(
        area: &DrawingArea<DB, plotters::coord::Shift>,
        failure: Failure,
        title: &str,
    ) -> Result<(), Error>
    where
        DB::ErrorType: 'static,
    {
        let scenario = Scenario::new(RATE, failure);
        let runs: Vec<_> = [
            Strategy::Naive,
            Strategy::Backoff,
            Strategy::TpsBudget,
            Strategy::Seawall,
            Strategy::SeawallThrottled,
        ]
        .into_iter()
        .map(|s| (s, sim::run(&scenario, s)))
        .collect();
        let bins = runs.iter().map(|(_, o)| o.load.len()).max().unwrap_or(1);
        let seconds = (bins as f64 / 10.0).ceil();
        let per_sec = |n: u32| f64::from(n) * 10.0;
        let top = runs
            .iter()
            .flat_map(|(_, o)| o.load.iter().copied())
            .map(per_sec)
            .fold(0.0, f64::max);
        let step = if top > 2000.0 { 1000.0 } else { 500.0 };
        let y_max = (top / step).ceil() * step + step / 2.0;

        let (left, right, upper, lower) = (70, 20, 34, 36);
        let mut chart = ChartBuilder::on(area)
            .margin_left(left)
            .margin_right(right)
            .margin_top(upper)
            .margin_bottom(lower)
            .build_cartesian_2d(0.0..seconds, 0.0..y_max)?;
        // Pixels within `area` (the chart's coordinates are the whole picture's).
        let base = area.get_base_pixel();
        let px = |chart: &ChartContext<'_, DB, _>, x: f64, y: f64| {
            let (x, y) = chart.backend_coord(&(x, y));
            (x - base.0, y - base.1)
        };

        // The outage, shaded; the grid, with its labels.
        let (start, end) = (2.0, 6.0);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(start, 0.0), (end, y_max)],
            RGBColor(240, 240, 240).filled(),
        )))?;
        let grid = RGBColor(215, 215, 215);
        let mut y = 0.0;
        while y <= y_max {
            chart.draw_series(std::iter::once(PathElement::new(
                [(0.0, y), (seconds, y)],
                grid,
            )))?;
            let (x0, y0) = px(&chart, 0.0, y);
            let label = format!("{}", y as u32);
            text(area, x0 - 8 - width(&label), y0 - 7, &label, BLACK)?;
            y += step;
        }
        for s in 0..=seconds as u32 {
            let x = f64::from(s);
            chart.draw_series(std::iter::once(PathElement::new(
                [(x, 0.0), (x, y_max)],
                grid,
            )))?;
            let (x0, y0) = px(&chart, x, 0.0);
            let label = format!("{s}");
            text(area, x0 - width(&label) / 2, y0 + 8, &label, BLACK)?;
        }
        let (x0, _) = px(&chart, 0.0, 0.0);
        text(area, x0, 10, title, BLACK)?;
        let (x1, y1) = px(&chart, seconds, 0.0);
        let label = "TIME (S)";
        text(area, (x0 + x1 - width(label)) / 2, y1 + 19, label, BLACK)?;
        let (_, ytop) = px(&chart, 0.0, y_max);
        text(area, 4, ytop - 18, "REQUESTS/S", BLACK)?;

        // The offered load, then one line per strategy.
        let offered = &runs[0].1.offered;
        let series = |values: &[u32]| -> Vec<(f64, f64)> {
            values
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| {
                    let (a, b) = (i as f64 / 10.0, (i + 1) as f64 / 10.0);
                    [(a, per_sec(n)), (b, per_sec(n))]
                })
                .collect()
        };
        for (strategy, outcome) in &runs {
            let width = if matches!(strategy, Strategy::Seawall) {
                3
            } else {
                2
            };
            chart.draw_series(LineSeries::new(
                series(&outcome.load),
                color(*strategy).stroke_width(width),
            ))?;
        }
        chart.draw_series(LineSeries::new(series(offered), BLACK.stroke_width(1)))?;

        // The legend, top right.
        let mut entries = vec![("OFFERED LOAD".to_string(), BLACK)];
        for (strategy, outcome) in &runs {
            entries.push((
                format!(
                    "{}: {:.2}X, PEAK {:.2}X, RECOVERED {:.0} %",
                    strategy.name().to_uppercase(),
                    outcome.outage_load(),
                    outcome.peak(),
                    100.0 * outcome.recovered_share()
                ),
                color(*strategy),
            ));
        }
        let (lx, ly) = px(&chart, seconds, y_max);
        let box_width = entries.iter().map(|(t, _)| width(t)).max().unwrap_or(0) + 44;
        let (bx, by) = (lx - box_width - 8, ly + 8);
        area.draw(&Rectangle::new(
            [
                (bx, by),
                (bx + box_width, by + 14 * entries.len() as i32 + 8),
            ],
            WHITE.filled(),
        ))?;
        area.draw(&Rectangle::new(
            [
                (bx, by),
                (bx + box_width, by + 14 * entries.len() as i32 + 8),
            ],
            grid,
        ))?;
        for (i, (label, c)) in entries.iter().enumerate() {
            let y = by + 8 + 14 * i as i32;
            area.draw(&Rectangle::new(
                [(bx + 8, y + 2), (bx + 32, y + 4)],
                c.filled(),
            ))?;
            text(area, bx + 40, y, label, BLACK)?;
        }
        Ok(())
    }

    /// The width of `s` in pixels, as [`text`] draws it.
    fn width(s: &str) -> i32 {
        6 * s.chars().count() as i32
    }

    /// Draws `s` (upper case, digits and a little punctuation) with its top left at `(x, y)`.
    fn text<DB: DrawingBackend>(
        area: &DrawingArea<DB, plotters::coord::Shift>,
        x: i32,
        y: i32,
        s: &str,
        color: RGBColor,
    ) -> Result<(), Error>
    where
        DB::ErrorType: 'static,
    {
        for (i, c) in s.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        area.draw_pixel((x + 6 * i as i32 + col, y + row as i32), &color)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A 5x7 glyph: seven rows, the leftmost pixel in bit 4.
    fn glyph(c: char) -> [u8; 7] {
        match c.to_ascii_uppercase() {
            'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
            'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
            'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
            'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
            'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
            'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
            'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
            'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
            'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
            'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
            'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
            'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
            'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
            'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
            'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
            'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
            'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
            'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
            'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
            'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
            'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
            'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
            'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
            'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
            'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
            'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
            '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
            '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
            '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
            '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
            '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
            '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
            '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
            '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
            '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
            '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
            '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
            ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
            ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
            '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
            '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
            '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
            ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
            '-' => [0, 0, 0, 0x1F, 0, 0, 0],
            '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
            '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
            _ => [0; 7],
        }
    }
}
