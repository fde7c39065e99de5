//! Small SVG line charts (figure against n, logarithmic y axis). Hand-written rather than a
//! plotting crate: text is left to the viewer's fonts, so nothing here needs system fonts.

use std::fmt::Write;

pub struct Series {
    pub label: String,
    /// (x, y) points; points with y ≤ 0 or not finite are left out (a log axis has no place
    /// for them).
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Formats a y tick value (a power of ten) for its label.
    pub y_format: fn(f64) -> String,
    pub series: Vec<Series>,
}

const W: f64 = 860.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 300.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Chart<'_> {
    pub fn to_svg(&self) -> String {
        let points = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0)
        };
        let xs: Vec<f64> = {
            let mut v: Vec<f64> = points().map(|(x, _)| *x).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        };
        let (mut y_lo, mut y_hi) = points().fold((f64::INFINITY, 0.0f64), |(lo, hi), (_, y)| {
            (lo.min(*y), hi.max(*y))
        });
        if xs.is_empty() {
            (y_lo, y_hi) = (1.0, 10.0);
        }
        // Whole decades, so the grid lines fall on powers of ten.
        let d_lo = y_lo.log10().floor();
        let d_hi = y_hi.log10().ceil().max(d_lo + 1.0);
        let (x_lo, x_hi) = match (xs.first(), xs.last()) {
            (Some(a), Some(b)) if b > a => (*a, *b),
            (Some(a), _) => (a - 1.0, a + 1.0),
            _ => (0.0, 1.0),
        };
        let plot_w = W - LEFT - RIGHT;
        let plot_h = H - TOP - BOTTOM;
        let px = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w;
        let py = |y: f64| TOP + plot_h - (y.log10() - d_lo) / (d_hi - d_lo) * plot_h;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
            LEFT + plot_w / 2.0,
            escape(self.title)
        );
        // Decade grid lines with labels, lighter lines at 2× and 5×.
        let mut d = d_lo;
        while d <= d_hi {
            let v = 10f64.powi(d as i32);
            let y = py(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ccc"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                escape(&(self.y_format)(v))
            );
            if d < d_hi {
                for m in [2.0, 5.0] {
                    let y = py(v * m);
                    let _ = writeln!(
                        svg,
                        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>"##,
                        LEFT + plot_w
                    );
                }
            }
            d += 1.0;
        }
        for x in &xs {
            let x_px = px(*x);
            let _ = writeln!(
                svg,
                r##"<line x1="{x_px:.1}" y1="{TOP}" x2="{x_px:.1}" y2="{:.1}" stroke="#eee"/><text x="{x_px:.1}" y="{:.1}" text-anchor="middle">{x}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 18.0
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            H - 16.0,
            escape(self.x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            escape(self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0)
                .map(|(x, y)| (px(*x), py(*y)))
                .collect();
            let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for (x, y) in &pts {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"/>"#
                );
            }
            let ly = TOP + 10.0 + 20.0 * i as f64;
            let lx = LEFT + plot_w + 14.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                escape(&s.label)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// 0.001 ms … 10 s.
pub fn format_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", v / 1000.0)
    } else {
        format!("{v} ms")
    }
}

/// 1 B … 1 GiB-ish, in powers of ten as plotted.
pub fn format_bytes(v: f64) -> String {
    if v >= 1e6 {
        format!("{} MB", v / 1e6)
    } else if v >= 1e3 {
        format!("{} kB", v / 1e3)
    } else {
        format!("{v} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_series_and_escapes_labels() {
        let chart = Chart {
            title: "latency <p50>",
            x_label: "n",
            y_label: "ms",
            y_format: format_ms,
            series: vec![
                Series {
                    label: "sign".into(),
                    points: vec![(3.0, 1.5), (5.0, 2.5), (21.0, 15.0)],
                },
                Series {
                    label: "dkg".into(),
                    points: vec![(3.0, 8.0), (5.0, f64::NAN)],
                },
            ],
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("latency &lt;p50&gt;"));
        assert!(!svg.contains("NaN"));
    }
}
