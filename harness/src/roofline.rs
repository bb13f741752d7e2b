//! The roofline picture of a calibration: one ceiling per precision (theoretical dashed,
//! empirical solid), the STREAM triad roof (and the theoretical memory bandwidth where the
//! plan gave one), and a point per measured kernel × precision, each labelled beside it.
//! Written as SVG by hand (exact, no dependencies) and rasterised to PNG with resvg, using
//! the DejaVu Sans font built into the binary, so the picture is the same on every machine.
//!
//! Arithmetic intensity is FLOPs over the minimal traffic: each input read once and each
//! output written once (GEMM: A and B in storage, C in the accumulation format; HPL-MxP: the
//! factored matrix read and written once in its working format; stencils: the STREAM
//! convention of their records, FLOPs / bandwidth_gbs).

use crate::error::{Error, Result};
use crate::calibration::{Calibration, Record};
use effcal_kernels::{Precision, cost};
use std::fmt::Write;
use std::path::Path;

/// DejaVu Sans (Bitstream Vera license: harness/assets/DejaVuSans-LICENSE.txt).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FONT_FAMILY: &str = "DejaVu Sans";

const W: f64 = 1100.0;
const H: f64 = 720.0;
/// Plot area: left, top, right, bottom (the right margin holds the ceilings' labels).
const PLOT: (f64, f64, f64, f64) = (90.0, 60.0, 790.0, 650.0);

/// Colour of a precision, the same for its ceiling and its points.
pub fn colour(p: &str) -> &'static str {
    match p {
        "f64" => "#1f5fa8",
        "f32" => "#e07b00",
        "bf16" => "#2a9a3a",
        "f16" => "#c8262b",
        "e4m3" => "#7b4bb0",
        "e5m2" => "#8a5a44",
        _ => "#444444",
    }
}

#[derive(Clone, Debug)]
pub struct Ceiling {
    /// Precisions sharing this ceiling (f16 and FP8 computed in f32 share f32's).
    pub precisions: Vec<String>,
    pub theoretical: Option<f64>,
    pub empirical: f64,
}

#[derive(Clone, Debug)]
pub struct Roof {
    pub label: String,
    pub gbs: f64,
    pub dashed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
}

#[derive(Clone, Debug)]
pub struct Point {
    pub label: String,
    pub precision: String,
    pub intensity: f64,
    pub gflops: f64,
    pub shape: Shape,
}

#[derive(Clone, Debug)]
pub struct Roofline {
    pub title: String,
    pub ceilings: Vec<Ceiling>,
    pub roofs: Vec<Roof>,
    pub points: Vec<Point>,
}

/// FLOPs per byte of minimal traffic of a record (see the module documentation).
pub fn intensity(r: &Record) -> Option<f64> {
    let p: Precision = r.precision.parse().ok()?;
    let num = |k: &str| r.params.get(k).and_then(serde_json::Value::as_f64);
    let num = |k: &str| num(k).map(|x| x as usize);
    match r.kernel.as_str() {
        "gemm" => {
            let (m, n, k) = (num("m")?, num("n")?, num("k")?);
            Some(cost::gemm::flops(m, n, k) / cost::gemm::bytes_moved(p, m, n, k))
        }
        "hpl-mxp" => {
            let n = num("n")?;
            Some(cost::hpl::flops(n) / cost::hpl::bytes_moved(p, n))
        }
        _ => r.bandwidth_gbs.as_ref().map(|b| r.gflops.median / b.median),
    }
}

impl Roofline {
    pub fn from_calibration(cal: &Calibration) -> Self {
        let mut ceilings: Vec<Ceiling> = Vec::new();
        let mut roofs = Vec::new();
        if let Some(peaks) = &cal.peaks {
            for p in Precision::ALL {
                let Some(pk) = peaks.per_precision.get(p.name()) else { continue };
                match ceilings.iter_mut().find(|c| c.theoretical == pk.theoretical_gflops && c.empirical == pk.empirical_gflops) {
                    Some(c) => c.precisions.push(p.name().into()),
                    None => ceilings.push(Ceiling { precisions: vec![p.name().into()], theoretical: pk.theoretical_gflops, empirical: pk.empirical_gflops }),
                }
            }
            if let Some(t) = peaks.stream_triad_gbs {
                roofs.push(Roof { label: format!("STREAM triad {t:.1} GB/s"), gbs: t, dashed: false });
            }
            if let Some(b) = peaks.memory_bandwidth_gbs {
                roofs.push(Roof { label: format!("memory, theoretical {b:.0} GB/s"), gbs: b, dashed: true });
            }
        }
        let points = cal
            .records
            .iter()
            .filter(|r| r.valid)
            .filter_map(|r| {
                let (name, shape) = match r.kernel.as_str() {
                    "gemm" => ("gemm".to_string(), Shape::Circle),
                    "hpl-mxp" => ("hpl-mxp".to_string(), Shape::Square),
                    k => (k.trim_start_matches("stencil-").to_string(), Shape::Triangle),
                };
                Some(Point { label: format!("{name} {}", r.precision), precision: r.precision.clone(), intensity: intensity(r)?, gflops: r.gflops.median, shape })
            })
            .collect();
        let sys = &cal.system;
        let title = format!("Roofline: {}, {} rank(s) × {} thread(s), {}", sys.cpu_model, sys.ranks, sys.threads_per_rank, cal.created.get(..10).unwrap_or(""));
        Roofline { title, ceilings, roofs, points }
    }

    /// The picture as an SVG document.
    pub fn svg(&self) -> String {
        let ax = self.axes();
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="{FONT_FAMILY}, sans-serif">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="32" font-size="18" text-anchor="middle">{}</text>"#, W / 2.0, esc(&self.title));
        ax.grid(&mut s);
        self.draw_roofs(&mut s, &ax);
        self.draw_ceilings(&mut s, &ax);
        self.draw_points(&mut s, &ax);
        let (l, ..) = PLOT;
        let _ = writeln!(
            s,
            r##"<text x="{l}" y="{}" font-size="11" fill="#555555">● GEMM   ■ HPL-MxP   ▲ stencils; colour = storage precision; points: median rate of each valid record</text>"##,
            H - 8.0
        );
        s.push_str("</svg>\n");
        s
    }

    /// The highest peak of any ceiling (theoretical or measured).
    fn peak_max(&self) -> f64 {
        self.ceilings.iter().map(|c| c.theoretical.unwrap_or(0.0).max(c.empirical)).fold(0.0, f64::max)
    }

    /// Axis ranges: whole decades around every point, ceiling and ridge.
    fn axes(&self) -> Axes {
        let peak_max = self.peak_max();
        let peak_min = self.ceilings.iter().map(|c| c.empirical).fold(f64::INFINITY, f64::min);
        let mut xs: Vec<f64> = self.points.iter().map(|p| p.intensity).collect();
        let mut ys: Vec<f64> = self.points.iter().map(|p| p.gflops).collect();
        for roof in &self.roofs {
            xs.push(peak_max / roof.gbs);
        }
        ys.push(peak_max);
        if peak_min.is_finite() {
            ys.push(peak_min);
        }
        let range = |v: &[f64], pad_lo: f64, pad_hi: f64| {
            let lo = v.iter().copied().filter(|x| *x > 0.0).fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            if !lo.is_finite() || hi <= 0.0 {
                return (0.0, 3.0);
            }
            ((lo / pad_lo).log10().floor(), (hi * pad_hi).log10().ceil())
        };
        let (x0, x1) = range(&xs, 2.0, 2.0);
        let (y0, y1) = range(&ys, 2.0, 1.5);
        Axes { x0, x1, y0, y1 }
    }

    /// Bandwidth roofs: y = bw · I up to the highest ceiling, labelled along the line.
    fn draw_roofs(&self, s: &mut String, ax: &Axes) {
        let (_, t, _, b) = PLOT;
        let peak_max = self.peak_max();
        let (xmin, xmax) = (10f64.powf(ax.x0), 10f64.powf(ax.x1));
        for roof in &self.roofs {
            let (xa, xb) = (xmin, (peak_max / roof.gbs).min(xmax));
            let (ax_, ay, bx, by) = (ax.px(xa), ax.py(roof.gbs * xa), ax.px(xb), ax.py(roof.gbs * xb));
            let dash = if roof.dashed { r#" stroke-dasharray="7 5""# } else { "" };
            let _ = writeln!(s, r##"<line x1="{ax_:.1}" y1="{ay:.1}" x2="{bx:.1}" y2="{by:.1}" stroke="#222222" stroke-width="2"{dash} clip-path="url(#plot)"/>"##);
            // The label sits above the line (points are below their roof), centred on the
            // middle of its visible part.
            let visible_from = xa.log10().max(ax.x0).max((10f64.powf(ax.y0) / roof.gbs).log10());
            let xl = 0.5 * (visible_from + xb.log10());
            let (lx, ly) = (ax.px(10f64.powf(xl)), ax.py(roof.gbs * 10f64.powf(xl)));
            if ly > t + 20.0 && ly < b - 4.0 {
                let angle = (by - ay).atan2(bx - ax_).to_degrees();
                let _ = writeln!(
                    s,
                    r##"<text x="{lx:.1}" y="{:.1}" font-size="13" fill="#222222" text-anchor="middle" transform="rotate({angle:.1} {lx:.1} {ly:.1})">{}</text>"##,
                    ly - 7.0,
                    esc(&roof.label)
                );
            }
        }
    }

    /// Ceilings: from the triad's ridge to the right edge, labelled in the right margin
    /// (spread apart where ceilings are close).
    fn draw_ceilings(&self, s: &mut String, ax: &Axes) {
        let (l, t, r, _) = PLOT;
        let xmin = 10f64.powf(ax.x0);
        let ridge_bw = self.roofs.first().map(|r| r.gbs);
        let mut labels: Vec<(f64, String, &'static str)> = Vec::new();
        for c in &self.ceilings {
            let col = colour(&c.precisions[0]);
            let from = |g: f64| ridge_bw.map_or(l, |bw| ax.px((g / bw).max(xmin)).max(l));
            if let Some(th) = c.theoretical {
                let y = ax.py(th);
                let _ = writeln!(s, r#"<line x1="{:.1}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="{col}" stroke-width="2" stroke-dasharray="7 5"/>"#, from(th));
            }
            let y = ax.py(c.empirical);
            let _ = writeln!(s, r#"<line x1="{:.1}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="{col}" stroke-width="2"/>"#, from(c.empirical));
            let names = c.precisions.join(", ");
            let computed = if c.precisions.len() > 1 { " (computed in f32)".to_string() } else { String::new() };
            let th = c.theoretical.map_or("theoretical unknown".to_string(), |t| format!("{t:.0} theoretical"));
            labels.push((y, format!("{names}{computed}: {:.0} measured, {th}", c.empirical), col));
        }
        labels.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut last = f64::NEG_INFINITY;
        for (y, text, col) in labels {
            let y = (y + 4.0).max(last + 16.0);
            last = y;
            for (i, line) in wrap(&text, 36).iter().enumerate() {
                let _ = writeln!(s, r#"<text x="{}" y="{:.1}" font-size="12" fill="{col}">{}</text>"#, r + 8.0, y + 14.0 * i as f64, esc(line));
                last = last.max(y + 14.0 * i as f64);
            }
        }
        let _ = writeln!(s, r##"<text x="{}" y="{}" font-size="11" fill="#555555">GFLOP/s; dashed: theoretical, solid: measured</text>"##, r + 8.0, t - 8.0);
    }

    /// Points, each labelled beside it where the label covers no other point or label and
    /// stays under every roof.
    fn draw_points(&self, s: &mut String, ax: &Axes) {
        let (l, _, r, _) = PLOT;
        for p in &self.points {
            let (x, y, col) = (ax.px(p.intensity), ax.py(p.gflops), colour(&p.precision));
            let _ = match p.shape {
                Shape::Circle => writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="{col}" stroke="white"/>"#),
                Shape::Square => writeln!(s, r#"<rect x="{:.1}" y="{:.1}" width="11" height="11" fill="{col}" stroke="white"/>"#, x - 5.5, y - 5.5),
                Shape::Triangle => writeln!(s, r#"<path d="M {x:.1} {:.1} L {:.1} {:.1} L {:.1} {:.1} Z" fill="{col}" stroke="white"/>"#, y - 7.0, x + 6.5, y + 5.0, x - 6.5, y + 5.0),
            };
        }
        let mut placer = LabelPlacer { taken: self.points.iter().map(|p| (ax.px(p.intensity) - 6.0, ax.py(p.gflops) - 6.0, 12.0, 12.0)).collect(), left: l, right: r };
        for p in &self.points {
            let (x, y, col) = (ax.px(p.intensity), ax.py(p.gflops), colour(&p.precision));
            let w = 7.0 * p.label.chars().count() as f64;
            // Below every bandwidth roof (the label's left end is where a roof is lowest).
            let under_roofs = |bx: f64, by: f64| {
                let intensity = 10f64.powf(ax.x0 + (bx - l) / (r - l) * (ax.x1 - ax.x0));
                self.roofs.iter().all(|roof| by > ax.py(roof.gbs * intensity) + 2.0)
            };
            let (tx, ty) = placer.place(x, y, w, under_roofs);
            let _ = writeln!(s, r#"<text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="{col}">{}</text>"#, esc(&p.label));
        }
    }
}

/// Decades shown on each axis, and the map from values to pixels (log scales).
struct Axes {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Axes {
    fn px(&self, x: f64) -> f64 {
        let (l, _, r, _) = PLOT;
        l + (x.log10() - self.x0) / (self.x1 - self.x0) * (r - l)
    }

    fn py(&self, y: f64) -> f64 {
        let (_, t, _, b) = PLOT;
        b - (y.log10() - self.y0) / (self.y1 - self.y0) * (b - t)
    }

    /// Decade lines and ticks (minor lines on x), the frame, the axis titles, the clip path.
    fn grid(&self, s: &mut String) {
        let (l, t, r, b) = PLOT;
        for d in self.x0 as i32..=self.x1 as i32 {
            let x = self.px(10f64.powi(d));
            let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{b}" stroke="#dddddd"/>"##);
            let _ = writeln!(s, r#"<text x="{x:.1}" y="{}" font-size="13" text-anchor="middle">{}</text>"#, b + 20.0, tick(d));
            for m in 2..10 {
                let v = m as f64 * 10f64.powi(d);
                if d < self.x1 as i32 {
                    let x = self.px(v);
                    let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{b}" stroke="#f2f2f2"/>"##);
                }
            }
        }
        for d in self.y0 as i32..=self.y1 as i32 {
            let y = self.py(10f64.powi(d));
            let _ = writeln!(s, r##"<line x1="{l}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#dddddd"/>"##);
            let _ = writeln!(s, r#"<text x="{}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#, l - 8.0, y + 4.0, tick(d));
        }
        let _ = writeln!(s, r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#333333"/>"##, r - l, b - t);
        let _ = writeln!(s, r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">arithmetic intensity, FLOP per byte of minimal traffic</text>"#, (l + r) / 2.0, b + 44.0);
        let _ = writeln!(s, r#"<text x="24" y="{}" font-size="14" text-anchor="middle" transform="rotate(-90 24 {})">GFLOP/s, all ranks</text>"#, (t + b) / 2.0, (t + b) / 2.0);
        let _ = writeln!(s, r#"<clipPath id="plot"><rect x="{l}" y="{t}" width="{}" height="{}"/></clipPath>"#, r - l, b - t);
    }
}

/// A box on the picture: x, y (top left), width, height.
type Box2 = (f64, f64, f64, f64);

/// Places the labels of points: each tries offsets from its point in a fixed order (right,
/// above and below, then left) and takes the first whose box stays between `left` and
/// `right`, passes `allowed` (e.g. under every roof) and overlaps nothing taken; where none
/// does, the first offset. Each placed label is taken for the ones after it.
struct LabelPlacer {
    taken: Vec<Box2>,
    left: f64,
    right: f64,
}

impl LabelPlacer {
    /// Label lines are 12 pixels high; the text baseline is 10 below the box's top.
    const HEIGHT: f64 = 12.0;

    /// Where the text of a label `w` wide for the point at (x, y) starts (its baseline).
    fn place(&mut self, x: f64, y: f64, w: f64, allowed: impl Fn(f64, f64) -> bool) -> (f64, f64) {
        let candidates = [(9.0, 4.0), (9.0, -9.0), (9.0, 17.0), (-w - 9.0, 4.0), (9.0, -22.0), (9.0, 30.0), (-w - 9.0, -9.0), (-w - 9.0, 17.0), (9.0, -35.0), (9.0, 43.0)];
        let h = Self::HEIGHT;
        let free = |bx: f64, by: f64| allowed(bx, by) && self.taken.iter().all(|&(ox, oy, ow, oh)| bx + w < ox || ox + ow < bx || by + h < oy || oy + oh < by);
        let (dx, dy) = candidates.iter().copied().find(|&(dx, dy)| free(x + dx, y + dy - 10.0) && x + dx >= self.left && x + dx + w <= self.right).unwrap_or(candidates[0]);
        self.taken.push((x + dx, y + dy - 10.0, w, h));
        (x + dx, y + dy)
    }
}

fn tick(d: i32) -> String {
    if d >= 0 { format!("{}", 10u64.pow(d as u32)) } else { format!("{}", 10f64.powi(d)) }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Splits `s` into lines of at most about `width` characters at spaces.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split(' ') {
        let cur = lines.last_mut().expect("one line");
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}

/// Rasterises an SVG of this module to PNG.
pub fn write_png(svg: &str, path: &Path) -> Result<()> {
    let mut opt = resvg::usvg::Options { font_family: FONT_FAMILY.to_string(), ..Default::default() };
    opt.fontdb_mut().load_font_data(FONT.to_vec());
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(|e| Error::Report(format!("the roofline SVG does not parse: {e}")))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| Error::Report("empty roofline picture".into()))?;
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let png = pixmap.encode_png().map_err(|e| Error::io(format!("encoding {}", path.display()), std::io::Error::other(e.to_string())))?;
    std::fs::write(path, png).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensities_by_hand() {
        let rec = |kernel: &str, p: &str, params: serde_json::Value| -> Record {
            serde_json::from_value(serde_json::json!({
                "kernel": kernel, "precision": p, "params": params, "flop_convention": "",
                "time_s": {"min": 1.0, "median": 1.0, "max": 1.0}, "gflops": {"min": 10.0, "median": 10.0, "max": 10.0},
                "efficiency": {"vs_theoretical": null, "vs_empirical": null}, "accuracy": {}, "valid": true,
                "bandwidth_gbs": {"min": 20.0, "median": 20.0, "max": 20.0}
            }))
            .unwrap()
        };
        // GEMM f64, n = 3072: 2n³ / (n² · (8 + 8 + 8)) = 256; bf16: 2n / (2 + 2 + 4) = 768.
        assert_eq!(intensity(&rec("gemm", "f64", serde_json::json!({"m": 3072, "n": 3072, "k": 3072}))), Some(256.0));
        assert_eq!(intensity(&rec("gemm", "bf16", serde_json::json!({"m": 3072, "n": 3072, "k": 3072}))), Some(768.0));
        // HPL-MxP f64, n = 1000: (2/3 n³ + 3/2 n²) / (2 · 8 n²).
        let h = intensity(&rec("hpl-mxp", "f64", serde_json::json!({"n": 1000}))).unwrap();
        assert!((h - (2.0 / 3.0 * 1e9 + 1.5e6) / 16e6).abs() < 1e-9);
        // Stencils: their GFLOP/s over their GB/s.
        assert_eq!(intensity(&rec("stencil-7pt", "f64", serde_json::json!({}))), Some(0.5));
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
    }

    #[test]
    fn labels_avoid_each_other_the_edges_and_what_is_not_allowed() {
        let anywhere = |_: f64, _: f64| true;
        let mut p = LabelPlacer { taken: Vec::new(), left: 0.0, right: 500.0 };
        // The first label goes to the right of its point, on its line.
        assert_eq!(p.place(100.0, 100.0, 70.0, anywhere), (109.0, 104.0));
        // A second point at the same place: right and above instead, clear of the first.
        let (x, y) = p.place(100.0, 100.0, 70.0, anywhere);
        assert_eq!((x, y), (109.0, 91.0));
        let (first, second) = (p.taken[0], p.taken[1]);
        assert!(second.1 + second.3 < first.1 || first.1 + first.3 < second.1, "{first:?} {second:?}");
        // At the right edge: to the left of the point.
        assert_eq!(p.place(480.0, 300.0, 70.0, anywhere), (480.0 - 79.0, 304.0));
        // Nothing above y = 200 allowed (a roof): the label goes below.
        assert_eq!(p.place(300.0, 205.0, 50.0, |_, by| by > 200.0), (309.0, 222.0));
        // Nowhere free: the first offset anyway.
        assert_eq!(p.place(300.0, 400.0, 50.0, |_, _| false), (309.0, 404.0));
    }
}
