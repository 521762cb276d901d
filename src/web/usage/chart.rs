//! Stacked charts as server-rendered SVG.
//!
//! Why SVG from the server: the chart is visible with JavaScript off, needs no CDN or chart
//! library (the CSP allows scripts only from this origin), renders the same in headless
//! Chromium for browser tests, and is built by an askama template so every name in it is
//! escaped. Each series is one `<g data-series="…">`; every bar carries a `<title>`, so hovering
//! shows the value without script. Each period also has one transparent column (`.bar-hit`)
//! labelled with every series' value: `static/chart.js` turns those into a tooltip at the
//! pointer and makes them keyboard reachable (Tab into the chart, arrow keys between periods).
//! The table under each chart holds the same numbers: it is the text alternative.
//! Geometry uses floats (pixels); the values shown are formatted exactly by the caller.

/// One stacked series: the value of each period and how to show it.
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub labels: Vec<String>,
    /// Its own colour (a workspace's), drawn when every series has a distinct one.
    pub color: Option<String>,
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
    pub color: String,
    pub bars: Vec<Bar>,
    /// Stacked area outline, used instead of bars when there are many periods.
    pub area: Option<String>,
}

pub struct Tick {
    pub pos: String,
    pub label: String,
}

/// One period's column: the hover and keyboard target, with every series' value.
pub struct Column {
    pub x: String,
    pub w: String,
    /// "Dec 1, 2026: Research $169.47, Staging $98.36; total $280.20" for screen readers.
    pub aria: String,
    /// Tooltip lines, `colour|name|value`, newline separated; the first is the period.
    pub lines: String,
}

/// One drawing of the chart at one size: `usage/_chart.html` draws a wide one for screens and
/// a narrow one for phones (the CSS shows one), each scaled to its figure's width by its
/// viewBox, so labels stay readable at 1440 px and at 390 px instead of shrinking to 4 px.
pub struct Plot {
    /// `chart-wide` or `chart-narrow`.
    pub class: &'static str,
    pub width: u32,
    pub height: u32,
    pub plot_left: u32,
    pub plot_bottom: u32,
    /// Font size of the labels, in viewBox units.
    pub font: u32,
    pub series: Vec<SeriesView>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub columns: Vec<Column>,
}

/// Everything `usage/_chart.html` draws.
pub struct ChartView {
    pub title: String,
    pub plots: Vec<Plot>,
    /// Each series' name and colour, in drawing order.
    pub legend: Vec<(String, String)>,
    /// What the y axis counts ("tokens", "US dollars"), shown above it.
    pub unit: String,
    pub empty: bool,
}

/// Primer's data-visualisation colours (`--data-<hue>-color-emphasis` of the light theme in
/// @primer/primitives), as values because SVG attributes and the tooltip's swatch take them.
const PALETTE: &[&str] = &[
    "#006edb", "#eb670f", "#30a147", "#df0c24", "#894ceb", "#179b9b", "#ce2c85", "#527a29",
    "#a830e8", "#856d4c",
];
/// Colour of the "Other" series (`--data-gray-color-emphasis`).
pub const OTHER_COLOR: &str = "#808fa3";

/// The colour of every series: their own (workspace colours) when each has one and no two are
/// the same, else the palette's, so series always stay apart.
fn colors(series: &[Series]) -> Vec<String> {
    let own: Vec<String> = series
        .iter()
        .filter_map(|s| s.color.as_ref().map(|c| c.to_ascii_lowercase()))
        .collect();
    let distinct: std::collections::HashSet<&String> = own.iter().collect();
    let usable = own.len() == series.iter().filter(|s| s.name != super::OTHER).count()
        && distinct.len() == own.len();
    series
        .iter()
        .enumerate()
        .map(|(i, s)| match (&s.color, usable) {
            (Some(own), true) => own.clone(),
            _ => color(i, &s.name).to_owned(),
        })
        .collect()
}

pub fn color(i: usize, name: &str) -> &'static str {
    if name == super::OTHER {
        OTHER_COLOR
    } else {
        PALETTE[i % PALETTE.len()]
    }
}

/// A drawing's size and margins, in viewBox units.
struct Frame {
    class: &'static str,
    w: f64,
    h: f64,
    left: f64,
    bottom: f64,
    /// Room above the plot for the unit label.
    top: f64,
    font: u32,
    /// At most this many x labels.
    x_labels: usize,
    /// Days labelled by their number alone ("Nov 27", "28", "29"), the month only at the first
    /// label and where it changes, so a week's labels do not run into each other.
    short_days: bool,
}

/// On a screen: about as wide as the page's main column, so 11 units read as 11-12 px.
const WIDE: Frame = Frame {
    class: "chart-wide",
    w: 900.0,
    h: 300.0,
    left: 70.0,
    bottom: 270.0,
    top: 24.0,
    font: 11,
    x_labels: 8,
    short_days: false,
};
/// On a phone (a 320-360 px figure): 12 units read as 10.5-12 px, and a week keeps a label
/// per day.
const NARROW: Frame = Frame {
    class: "chart-narrow",
    w: 360.0,
    h: 240.0,
    left: 48.0,
    bottom: 214.0,
    top: 22.0,
    font: 12,
    x_labels: 7,
    short_days: true,
};
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
    let plots: Vec<Plot> = [WIDE, NARROW]
        .iter()
        .map(|frame| plot(frame, periods, series, &y_format))
        .collect();
    let max = (0..periods.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    ChartView {
        title: title.to_owned(),
        plots,
        legend: series
            .iter()
            .zip(colors(series))
            .map(|(s, c)| (s.name.clone(), c))
            .collect(),
        unit: String::new(),
        empty: max <= 0.0,
    }
}

fn plot(
    frame: &Frame,
    periods: &[String],
    series: &[Series],
    y_format: &impl Fn(f64) -> String,
) -> Plot {
    let (w, left, bottom, top) = (frame.w, frame.left, frame.bottom, frame.top);
    let palette = colors(series);
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
    let (tick_step, ticks) = nice_ticks(max);
    let scale_max = tick_step * ticks as f64;
    let plot_w = w - left - 10.0;
    let plot_h = bottom - top;
    let step = plot_w / n as f64;
    let y = |v: f64| {
        bottom
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
                    x: px(left + i as f64 * step + step * 0.1),
                    y: px(y1),
                    w: px((step * 0.8).max(0.5)),
                    h: px((y0 - y1).max(0.5)),
                    title: format!(
                        "{} · {}: {}",
                        long_label(period),
                        s.name,
                        s.labels.get(i).map(String::as_str).unwrap_or("0")
                    ),
                });
            }
        }
        let area = (periods.len() > MAX_BARS).then(|| {
            let mut d = String::new();
            for (i, yv) in upper.iter().enumerate() {
                let x = left + (i as f64 + 0.5) * step;
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if i == 0 { "M" } else { "L" },
                    x,
                    yv
                ));
            }
            for (i, yv) in lower.iter().enumerate().rev() {
                let x = left + (i as f64 + 0.5) * step;
                d.push_str(&format!("L{:.1},{:.1} ", x, y(*yv)));
            }
            d.push('Z');
            d
        });
        views.push(SeriesView {
            name: s.name.clone(),
            color: palette[si].clone(),
            bars,
            area,
        });
    }
    let y_ticks = (0..=ticks)
        .map(|k| {
            let v = tick_step * k as f64;
            Tick {
                pos: px(y(v)),
                label: y_format(v),
            }
        })
        .collect();
    let x_ticks = x_ticks(periods, frame.x_labels, frame.short_days)
        .into_iter()
        .map(|(i, label)| Tick {
            pos: px(left + (i as f64 + 0.5) * step),
            label,
        })
        .collect();
    let columns = periods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let parts: Vec<String> = series
                .iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        s.name,
                        s.labels.get(i).map(String::as_str).unwrap_or("0")
                    )
                })
                .collect();
            let mut lines = vec![long_label(p)];
            for (si, s) in series.iter().enumerate() {
                lines.push(format!(
                    "{}|{}|{}",
                    palette[si],
                    s.name,
                    s.labels.get(i).map(String::as_str).unwrap_or("0")
                ));
            }
            Column {
                x: px(left + i as f64 * step),
                w: px(step.max(0.5)),
                aria: format!("{}: {}", long_label(p), parts.join(", ")),
                lines: lines.join("\n"),
            }
        })
        .collect();
    Plot {
        class: frame.class,
        width: w as u32,
        height: frame.h as u32,
        plot_left: left as u32,
        plot_bottom: bottom as u32,
        font: frame.font,
        series: views,
        y_ticks,
        x_ticks,
        columns,
    }
}

/// A round tick step (1, 2, 2.5 or 5 × a power of ten) and how many steps (at most 5) cover
/// `v`, so every tick is a value people read at a glance: 0, 250k, 500k, 750k, 1M.
fn nice_ticks(v: f64) -> (f64, u32) {
    if v <= 0.0 {
        return (0.25, 4);
    }
    let raw = v / 4.0;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| (v / s).ceil() <= 5.0)
        .unwrap_or(10.0 * p);
    (step, ((v / step).ceil() as u32).max(1))
}

/// A period as the tooltip and screen readers say it: "Dec 1, 2026", "Dec 1, 2026, 14:00 UTC".
fn long_label(period: &str) -> String {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(period, "%Y-%m-%d") {
        return crate::labels::calendar_day(d);
    }
    match chrono::NaiveDateTime::parse_from_str(period, "%Y-%m-%dT%H:%MZ") {
        Ok(t) => crate::labels::moment_label(&t.and_utc()),
        Err(_) => period.to_owned(),
    }
}

/// Which periods get an x label, and the label: at most about `max` (8 on a screen), on round steps (every 1, 2,
/// 7 or 14 days; every 1, 2, 3, 6 or 12 hours; every 5, 10, 15, 30 or 60 minutes), short
/// ("14:00", "Dec 1"), with the date at the first tick of each day for times.
fn x_ticks(periods: &[String], max: usize, short_days: bool) -> Vec<(usize, String)> {
    let days: Option<Vec<chrono::NaiveDate>> = periods
        .iter()
        .map(|p| chrono::NaiveDate::parse_from_str(p, "%Y-%m-%d").ok())
        .collect();
    if let Some(days) = days {
        let every = [1, 2, 7, 14, 28, 56]
            .into_iter()
            .find(|k| days.len().div_ceil(*k) <= max)
            .unwrap_or(days.len().div_ceil(max).max(1));
        let mut month = None;
        return days
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, d)| {
                let same_month = month == Some(d.format("%Y-%m").to_string());
                month = Some(d.format("%Y-%m").to_string());
                let format = if short_days && same_month {
                    "%-d"
                } else {
                    "%b %-d"
                };
                (i, d.format(format).to_string())
            })
            .collect();
    }
    let times: Option<Vec<chrono::NaiveDateTime>> = periods
        .iter()
        .map(|p| chrono::NaiveDateTime::parse_from_str(p, "%Y-%m-%dT%H:%MZ").ok())
        .collect();
    let Some(times) = times else {
        let every = periods.len().div_ceil(max).max(1);
        return periods
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, p)| (i, p.clone()))
            .collect();
    };
    use chrono::{Datelike, Timelike};
    let span = times.len();
    let minutes_per_period = match (times.first(), times.get(1)) {
        (Some(a), Some(b)) => (*b - *a).num_minutes().max(1),
        _ => 60,
    };
    // Candidate steps in minutes, each a whole number of periods.
    let steps = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080];
    let step = steps
        .into_iter()
        .filter(|s| s % minutes_per_period == 0)
        .find(|s| (span as i64 * minutes_per_period).div_euclid(*s) <= max as i64)
        .unwrap_or(10080);
    let mut last_day = None;
    times
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            let minute_of_day = i64::from(t.hour() * 60 + t.minute());
            if step >= 1440 {
                minute_of_day == 0 && t.date().ordinal0() as i64 % (step / 1440) == 0
            } else {
                minute_of_day % step == 0
            }
        })
        .map(|(i, t)| {
            let day = t.date();
            let label = if last_day != Some(day)
                && (last_day.is_some() || t.hour() == 0 && t.minute() == 0)
            {
                let same_month = last_day.is_some_and(|d| d.month() == day.month());
                if short_days && same_month {
                    t.format("%-d").to_string()
                } else {
                    t.format("%b %-d").to_string()
                }
            } else {
                t.format("%H:%M").to_string()
            };
            last_day = Some(day);
            (i, label)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_ticks_are_round_values_that_cover_the_data() {
        assert_eq!(nice_ticks(1_000_000.0), (200_000.0, 5));
        assert_eq!(nice_ticks(1_100_000.0), (250_000.0, 5));
        assert_eq!(nice_ticks(7.0), (2.0, 4));
        assert_eq!(nice_ticks(280.2), (100.0, 3));
    }

    #[test]
    fn hourly_x_labels_fall_on_round_hours_and_name_each_new_day() {
        let periods: Vec<String> = (0..48)
            .map(|h| format!("2026-12-0{}T{:02}:00Z", 1 + h / 24, h % 24))
            .collect();
        let ticks = x_ticks(&periods, 8, false);
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            vec!["Dec 1", "06:00", "12:00", "18:00", "Dec 2", "06:00", "12:00", "18:00"]
        );
        assert!(ticks.len() <= 8);
    }

    #[test]
    fn daily_x_labels_are_short_and_evenly_spaced() {
        let periods: Vec<String> = (1..=31).map(|d| format!("2026-12-{d:02}")).collect();
        let ticks = x_ticks(&periods, 8, false);
        assert_eq!(ticks[0], (0, "Dec 1".to_owned()));
        assert_eq!(ticks[1], (7, "Dec 8".to_owned()));
        assert!(ticks.len() <= 8);
    }

    #[test]
    fn each_series_gets_one_group_and_a_bar_per_nonzero_value() {
        let periods = vec!["a".to_string(), "b".to_string()];
        let series = vec![
            Series {
                name: "x".into(),
                values: vec![1.0, 0.0],
                labels: vec!["1".into(), "0".into()],
                color: None,
            },
            Series {
                name: "y".into(),
                values: vec![2.0, 3.0],
                labels: vec!["2".into(), "3".into()],
                color: None,
            },
        ];
        let view = build("t", &periods, &series, |v| format!("{v}"));
        for plot in &view.plots {
            assert_eq!(plot.series.len(), 2);
            assert_eq!(plot.series[0].bars.len(), 1);
            assert_eq!(plot.series[1].bars.len(), 2);
        }
    }

    #[test]
    fn the_phone_drawing_is_narrow_with_larger_labels_and_names_every_day_of_a_week() {
        let periods: Vec<String> = (1..=7).map(|d| format!("2026-12-{d:02}")).collect();
        let view = build("t", &periods, &[], |v| format!("{v}"));
        let wide = view.plots.iter().find(|p| p.class == "chart-wide").unwrap();
        let narrow = view
            .plots
            .iter()
            .find(|p| p.class == "chart-narrow")
            .unwrap();
        assert!(narrow.width <= 400 && wide.width >= 800);
        assert!(narrow.font > wide.font);
        let labels: Vec<&str> = narrow.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["Dec 1", "2", "3", "4", "5", "6", "7"]);
    }

    #[test]
    fn workspace_colours_are_used_only_when_they_tell_every_series_apart() {
        let s = |name: &str, color: Option<&str>| Series {
            name: name.into(),
            values: vec![1.0],
            labels: vec!["1".into()],
            color: color.map(str::to_owned),
        };
        let own = colors(&[s("a", Some("#FF0000")), s("b", Some("#00ff00"))]);
        assert_eq!(own, ["#FF0000", "#00ff00"]);
        let same = colors(&[s("a", Some("#6C5BB9")), s("b", Some("#6c5bb9"))]);
        assert_eq!(same, [PALETTE[0], PALETTE[1]]);
        let missing = colors(&[s("a", Some("#ff0000")), s("b", None)]);
        assert_eq!(missing, [PALETTE[0], PALETTE[1]]);
    }
}
