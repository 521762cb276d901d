//! Stacked charts as server-rendered SVG.
//!
//! Why SVG from the server: the chart is visible with JavaScript off, needs no CDN or chart
//! library (the CSP allows scripts only from this origin), renders the same in headless
//! Chromium for browser tests, and is built by an askama template so every name in it is
//! escaped. Each series is one `<g data-series="…">`; every bar carries a `<title>`, so hovering
//! shows the value without script. `static/chart.js` only adds legend toggling and a hover
//! read-out. The table under each chart holds the same numbers: it is the text alternative.
//! Geometry uses floats (pixels); the values shown are formatted exactly by the caller.

/// One stacked series: the value of each period and how to show it.
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub labels: Vec<String>,
}

pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub title: String,
}

pub struct SeriesView {
    pub name: String,
    pub color: &'static str,
    pub bars: Vec<Bar>,
    /// Stacked area outline, used instead of bars when there are many periods.
    pub area: Option<String>,
}

pub struct Tick {
    pub pos: String,
    pub label: String,
}

/// Everything `usage/_chart.html` draws.
pub struct ChartView {
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub plot_left: u32,
    pub plot_bottom: u32,
    pub series: Vec<SeriesView>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub empty: bool,
}

const PALETTE: &[&str] = &[
    "#4c6ef5", "#f08c00", "#2f9e44", "#e03131", "#7048e8", "#1098ad", "#d6336c", "#5c940d",
    "#ae3ec9", "#495057",
];
/// Colour of the "Other" series.
pub const OTHER_COLOR: &str = "#adb5bd";

pub fn color(i: usize, name: &str) -> &'static str {
    if name == super::OTHER {
        OTHER_COLOR
    } else {
        PALETTE[i % PALETTE.len()]
    }
}

const W: f64 = 900.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 270.0;
const TOP: f64 = 10.0;
/// Above this many periods bars get thinner than a few pixels: draw areas instead.
const MAX_BARS: usize = 240;

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// `y_format` formats an axis value (tokens, dollars…).
pub fn build(
    title: &str,
    periods: &[String],
    series: &[Series],
    y_format: impl Fn(f64) -> String,
) -> ChartView {
    let n = periods.len().max(1);
    let totals: Vec<f64> = (0..periods.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().cloned().fold(0.0, f64::max);
    let scale_max = nice_max(max);
    let plot_w = W - LEFT - 10.0;
    let plot_h = BOTTOM - TOP;
    let step = plot_w / n as f64;
    let y = |v: f64| {
        BOTTOM
            - if scale_max > 0.0 {
                v / scale_max * plot_h
            } else {
                0.0
            }
    };
    let mut base = vec![0.0f64; periods.len()];
    let mut views = Vec::new();
    for (si, s) in series.iter().enumerate() {
        let mut bars = Vec::new();
        let mut upper = Vec::with_capacity(periods.len());
        let lower = base.clone();
        for (i, period) in periods.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            let y0 = y(base[i]);
            base[i] += v;
            let y1 = y(base[i]);
            upper.push(y1);
            if periods.len() <= MAX_BARS && v > 0.0 {
                bars.push(Bar {
                    x: px(LEFT + i as f64 * step + step * 0.1),
                    y: px(y1),
                    w: px((step * 0.8).max(0.5)),
                    h: px((y0 - y1).max(0.5)),
                    title: format!(
                        "{period} · {}: {}",
                        s.name,
                        s.labels.get(i).map(String::as_str).unwrap_or("0")
                    ),
                });
            }
        }
        let area = (periods.len() > MAX_BARS).then(|| {
            let mut d = String::new();
            for (i, yv) in upper.iter().enumerate() {
                let x = LEFT + (i as f64 + 0.5) * step;
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if i == 0 { "M" } else { "L" },
                    x,
                    yv
                ));
            }
            for (i, yv) in lower.iter().enumerate().rev() {
                let x = LEFT + (i as f64 + 0.5) * step;
                d.push_str(&format!("L{:.1},{:.1} ", x, y(*yv)));
            }
            d.push('Z');
            d
        });
        views.push(SeriesView {
            name: s.name.clone(),
            color: color(si, &s.name),
            bars,
            area,
        });
    }
    let y_ticks = (0..=4)
        .map(|k| {
            let v = scale_max * k as f64 / 4.0;
            Tick {
                pos: px(y(v)),
                label: y_format(v),
            }
        })
        .collect();
    let every = periods.len().div_ceil(8).max(1);
    let x_ticks = periods
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| Tick {
            pos: px(LEFT + (i as f64 + 0.5) * step),
            label: p.clone(),
        })
        .collect();
    ChartView {
        title: title.to_owned(),
        width: W as u32,
        height: H as u32,
        plot_left: LEFT as u32,
        plot_bottom: BOTTOM as u32,
        series: views,
        y_ticks,
        x_ticks,
        empty: max <= 0.0,
    }
}

/// A round axis maximum at or above `v` (1, 2 or 5 × a power of ten).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_maximum_is_round_and_covers_the_data() {
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(0.0), 1.0);
    }

    #[test]
    fn each_series_gets_one_group_and_a_bar_per_nonzero_value() {
        let periods = vec!["a".to_string(), "b".to_string()];
        let series = vec![
            Series {
                name: "x".into(),
                values: vec![1.0, 0.0],
                labels: vec!["1".into(), "0".into()],
            },
            Series {
                name: "y".into(),
                values: vec![2.0, 3.0],
                labels: vec!["2".into(), "3".into()],
            },
        ];
        let view = build("t", &periods, &series, |v| format!("{v}"));
        assert_eq!(view.series.len(), 2);
        assert_eq!(view.series[0].bars.len(), 1);
        assert_eq!(view.series[1].bars.len(), 2);
    }
}
