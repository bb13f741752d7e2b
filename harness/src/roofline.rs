//! The roofline picture of a calibration: one ceiling per arithmetic (theoretical dashed,
//! measured solid), the STREAM triad roof (and the theoretical memory bandwidth where the
//! plan gave one), and a marker per measured kernel × precision, each labelled beside it.
//! Written as SVG by hand (exact, no dependencies) and rasterised to PNG with resvg, using
//! the DejaVu Sans font built into the binary, so the picture is the same on every machine.
//!
//! Arithmetic intensity is FLOPs over the minimal traffic: each input read once and each
//! output written once (GEMM: A and B in storage, C in the accumulation format; HPL-MxP: the
//! factored matrix read and written once in its working format; stencils: the STREAM
//! convention of their records, FLOPs / bandwidth_gbs).
//!
//! Layout: every text is measured with the font it is drawn in (resvg's own layout), so each
//! label's box is known before it is placed. Nothing is drawn over a label: lines that
//! coincide are drawn as nested strokes (the wider underneath), markers that would cover
//! each other are moved apart (joined by a line to a dot where they lie), and each label
//! takes the first free place around its marker (nearest first; a line joins it to its
//! marker when it is not beside it). The tests check the rendered boxes, through resvg.

use crate::calibration::{Calibration, Record};
use crate::error::{Error, Result};
use effcal_kernels::{Precision, cost};
use resvg::usvg;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

/// DejaVu Sans (Bitstream Vera license: harness/assets/DejaVuSans-LICENSE.txt).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FONT_FAMILY: &str = "DejaVu Sans";

const W: f64 = 1100.0;
const H: f64 = 740.0;
/// Plot area: left, top, right, bottom (the right margin holds the ceilings' labels).
const PLOT: (f64, f64, f64, f64) = (90.0, 60.0, 790.0, 650.0);
/// Font sizes: point labels, ceiling labels (and their line spacing), roof labels.
const POINT_FONT: f64 = 12.0;
const CEILING_FONT: f64 = 12.0;
const CEILING_LINE: f64 = 15.0;
const ROOF_FONT: f64 = 13.0;
/// Lines closer than this (pixels) are drawn as one bundle of nested strokes.
const COINCIDENT: f64 = 3.0;
/// Half the side of the square a marker is kept in.
const MARKER: f64 = 7.0;

/// Colour of an arithmetic, the same for its ceiling and the points computed in it.
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
    /// The arithmetic (peaks' `compute_precision`).
    pub arithmetic: String,
    /// Storage precisions computed in it (f16 and FP8 share f32's where the CPU has no
    /// arithmetic of theirs).
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
    /// The arithmetic it computed in: its colour is that of its ceiling.
    pub arithmetic: String,
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

/// The arithmetic a record computed in: its `arithmetic` parameter; for calibrations
/// written before records had one, the arithmetic of its precision's peak.
fn arithmetic(r: &Record, cal: &Calibration) -> String {
    let own = r.params.get("arithmetic").and_then(serde_json::Value::as_str);
    let peak = || cal.peaks.as_ref()?.per_precision.get(&r.precision).map(|p| p.compute_precision.as_str());
    own.or_else(peak).unwrap_or(&r.precision).to_string()
}

/// A rate as printed on the picture: whole GFLOP/s from 100 up, three digits below.
fn rate(x: f64) -> String {
    if x >= 100.0 { format!("{x:.0}") } else { format!("{:.*}", if x >= 10.0 { 1 } else { 2 }, x) }
}

impl Roofline {
    pub fn from_calibration(cal: &Calibration) -> Self {
        let mut ceilings: Vec<Ceiling> = Vec::new();
        let mut roofs = Vec::new();
        if let Some(peaks) = &cal.peaks {
            for p in Precision::ALL {
                let Some(pk) = peaks.per_precision.get(p.name()) else { continue };
                let i = match ceilings.iter().position(|c| c.arithmetic == pk.compute_precision) {
                    Some(i) => i,
                    None => {
                        ceilings.push(Ceiling { arithmetic: pk.compute_precision.clone(), precisions: Vec::new(), theoretical: pk.theoretical_gflops, empirical: pk.empirical_gflops });
                        ceilings.len() - 1
                    }
                };
                let c = &mut ceilings[i];
                // The arithmetic's own peak where the calibration has it.
                if p.name() == c.arithmetic {
                    (c.theoretical, c.empirical) = (pk.theoretical_gflops, pk.empirical_gflops);
                }
                c.precisions.push(p.name().into());
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
                let label = format!("{name} {}", r.precision);
                Some(Point { label, arithmetic: arithmetic(r, cal), intensity: intensity(r)?, gflops: r.gflops.median, shape })
            })
            .collect();
        let sys = &cal.system;
        let title = format!("Roofline: {}, {} rank(s) × {} thread(s), {}", sys.cpu_model, sys.ranks, sys.threads_per_rank, cal.created.get(..10).unwrap_or(""));
        Roofline { title, ceilings, roofs, points }
    }

    /// The picture as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let mut pic = Picture { fig: self, ax: self.axes(), measure: Measure::new(), taken: Vec::new(), labels: Vec::new(), lines: String::new(), leaders: String::new(), markers: String::new(), text: String::new() };
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="{FONT_FAMILY}, sans-serif">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(s, r#"<text id="title" x="{}" y="32" font-size="18" text-anchor="middle">{}</text>"#, W / 2.0, esc(&self.title));
        pic.ax.grid(&mut s);
        let at = pic.markers();
        pic.roofs()?;
        pic.ceilings()?;
        pic.point_labels(&at)?;
        let moved = at.iter().zip(&self.points).any(|(&(x, y), p)| (x, y) != (pic.ax.px(p.intensity), pic.ax.py(p.gflops)));
        for part in [&pic.lines, &pic.leaders, &pic.markers, &pic.text] {
            s.push_str(part);
        }
        let (l, ..) = PLOT;
        let _ = writeln!(
            s,
            r##"<text id="legend" x="{l}" y="{}" font-size="11" fill="#555555">● GEMM   ■ HPL-MxP   ▲ stencils; colour: the arithmetic the point computes in (its ceiling's); points: median rate of each valid record</text>"##,
            H - 24.0
        );
        if moved {
            let _ = writeln!(
                s,
                r##"<text id="legend-moved" x="{l}" y="{}" font-size="11" fill="#555555">A marker joined by a line to a dot was moved off another marker: the dot is where it lies.</text>"##,
                H - 9.0
            );
        }
        s.push_str("</svg>\n");
        Ok(s)
    }

    /// The highest peak of any ceiling (theoretical or measured).
    fn peak_max(&self) -> f64 {
        self.ceilings.iter().map(|c| c.theoretical.unwrap_or(0.0).max(c.empirical)).fold(0.0, f64::max)
    }

    /// Axis ranges: whole decades around every point, ceiling and ridge, at least three on
    /// each axis (so there are at least four tick labels).
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
            let (mut lo, mut hi) = if !lo.is_finite() || hi <= 0.0 { (0.0, 3.0) } else { ((lo / pad_lo).log10().floor(), (hi * pad_hi).log10().ceil()) };
            while hi - lo < 3.0 {
                lo -= 1.0;
                if hi - lo < 3.0 {
                    hi += 1.0;
                }
            }
            (lo, hi)
        };
        let (x0, x1) = range(&xs, 2.0, 2.0);
        let (y0, y1) = range(&ys, 2.0, 1.5);
        Axes { x0, x1, y0, y1 }
    }
}

/// A picture being laid out: what is drawn so far, in layers (lines under leaders under
/// markers under text), and the boxes later labels must keep clear of.
struct Picture<'a> {
    fig: &'a Roofline,
    ax: Axes,
    measure: Measure,
    /// Everything a label must not cover: markers, lines, labels, leaders.
    taken: Vec<Quad>,
    /// Markers and labels only: what a leader must not cross.
    labels: Vec<Quad>,
    lines: String,
    leaders: String,
    markers: String,
    text: String,
}

impl Picture<'_> {
    /// Draws each point's marker where it lies, or, where that would cover an earlier
    /// marker, at the nearest free place around it, joined by a line to a dot where it
    /// lies. Returns where each marker is drawn.
    fn markers(&mut self) -> Vec<(f64, f64)> {
        let (l, t, r, b) = PLOT;
        let mut at: Vec<(f64, f64)> = Vec::new();
        for p in &self.fig.points {
            let (x0, y0) = (self.ax.px(p.intensity), self.ax.py(p.gflops));
            let free = |x: f64, y: f64| {
                let q = marker_box(x, y);
                q.within(l, t, r, b) && at.iter().all(|&(ox, oy)| !q.overlaps(&marker_box(ox, oy)))
            };
            let mut spot = (x0, y0);
            if !free(x0, y0) {
                let rings = [16.0, 30.0, 44.0, 58.0].into_iter();
                let around = rings.flat_map(|rad: f64| [0.0f64, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0].map(|a| (x0 + rad * a.to_radians().cos(), y0 - rad * a.to_radians().sin())));
                spot = around.into_iter().find(|&(x, y)| free(x, y)).unwrap_or(spot);
                let _ = writeln!(self.leaders, r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{:.1}" y2="{:.1}" stroke="#555555" stroke-width="1"/>"##, spot.0, spot.1);
                let _ = writeln!(self.leaders, r##"<circle cx="{x0:.1}" cy="{y0:.1}" r="2.5" fill="{}" stroke="#333333" stroke-width="0.8"/>"##, colour(&p.arithmetic));
            }
            let (x, y, col, i) = (spot.0, spot.1, colour(&p.arithmetic), at.len());
            let _ = match p.shape {
                Shape::Circle => writeln!(self.markers, r#"<circle id="marker-{i}" cx="{x:.1}" cy="{y:.1}" r="6" fill="{col}" stroke="white"/>"#),
                Shape::Square => writeln!(self.markers, r#"<rect id="marker-{i}" x="{:.1}" y="{:.1}" width="11" height="11" fill="{col}" stroke="white"/>"#, x - 5.5, y - 5.5),
                Shape::Triangle => writeln!(
                    self.markers,
                    r#"<path id="marker-{i}" d="M {x:.1} {:.1} L {:.1} {:.1} L {:.1} {:.1} Z" fill="{col}" stroke="white"/>"#,
                    y - 7.0,
                    x + 6.5,
                    y + 5.0,
                    x - 6.5,
                    y + 5.0
                ),
            };
            at.push(spot);
        }
        for &(x, y) in &at {
            self.taken.push(marker_box(x, y));
            self.labels.push(marker_box(x, y));
        }
        at
    }

    /// Bandwidth roofs: y = bw · I up to the highest ceiling, each labelled along its line
    /// (above it where there is room, else below), clear of markers and other roofs.
    fn roofs(&mut self) -> Result<()> {
        let (l, t, r, b) = PLOT;
        let ax = &self.ax;
        let peak_max = self.fig.peak_max();
        let (xmin, xmax, ymin) = (10f64.powf(ax.x0), 10f64.powf(ax.x1), 10f64.powf(ax.y0));
        // The visible part of each roof, in data coordinates.
        let spans: Vec<(f64, f64)> = self.fig.roofs.iter().map(|roof| (xmin.max(ymin / roof.gbs), (peak_max / roof.gbs).min(xmax))).collect();
        for (roof, &(xa, xb)) in self.fig.roofs.iter().zip(&spans) {
            let (ax_, ay, bx, by) = (ax.px(xmin), ax.py(roof.gbs * xmin), ax.px(xb), ax.py(roof.gbs * xb));
            let dash = if roof.dashed { r#" stroke-dasharray="7 5""# } else { "" };
            let _ = writeln!(self.lines, r##"<line x1="{ax_:.1}" y1="{ay:.1}" x2="{bx:.1}" y2="{by:.1}" stroke="#222222" stroke-width="2"{dash} clip-path="url(#plot)"/>"##);
            if xa < xb {
                self.taken.push(Quad::segment((ax.px(xa), ax.py(roof.gbs * xa)), (bx, by), 2.0));
            }
        }
        for (i, (roof, &(xa, xb))) in self.fig.roofs.iter().zip(&spans).enumerate() {
            if xa >= xb {
                continue;
            }
            let e = self.measure.get(&roof.label, ROOF_FONT)?;
            let (pa, pb) = ((ax.px(xa), ax.py(roof.gbs * xa)), (ax.px(xb), ax.py(roof.gbs * xb)));
            let angle = (pb.1 - pa.1).atan2(pb.0 - pa.0);
            let (lo, hi) = (xa.log10(), xb.log10());
            let fractions = [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8];
            // Above the line (baseline 7 pixels off it), then below it.
            let offsets = [-7.0, 7.0 + e.above];
            let candidates = offsets.iter().flat_map(|&off| fractions.map(|f| (f, off)));
            let fits = |&(f, off): &(f64, f64)| {
                let xl = 10f64.powf(lo + f * (hi - lo));
                let (cx, cy) = (ax.px(xl), ax.py(roof.gbs * xl));
                let q = Quad::text(cx - e.w / 2.0, cy + off, e).rotated(angle, (cx, cy));
                q.within(l + 2.0, t + 2.0, r - 2.0, b - 2.0) && self.taken.iter().all(|o| !q.overlaps(o))
            };
            let Some((f, off)) = candidates.clone().find(fits) else { continue };
            let xl = 10f64.powf(lo + f * (hi - lo));
            let (cx, cy) = (ax.px(xl), ax.py(roof.gbs * xl));
            let q = Quad::text(cx - e.w / 2.0, cy + off, e).rotated(angle, (cx, cy));
            self.taken.push(q);
            self.labels.push(q);
            let _ = writeln!(
                self.text,
                r##"<text id="roof-label-{i}" x="{:.1}" y="{:.1}" font-size="{ROOF_FONT}" fill="#222222" transform="rotate({:.2} {cx:.1} {cy:.1})">{}</text>"##,
                cx - e.w / 2.0,
                cy + off,
                angle.to_degrees(),
                esc(&roof.label)
            );
        }
        Ok(())
    }

    /// Ceilings: from the triad's ridge to the right edge, labelled in the right margin,
    /// each label at its own line's height (one label for a ceiling whose theoretical and
    /// measured lines are closer than a label's height), spread apart where lines are close
    /// and then joined to their line by a short leader.
    fn ceilings(&mut self) -> Result<()> {
        let (l, t, r, b) = PLOT;
        let ax = &self.ax;
        let xmin = 10f64.powf(ax.x0);
        let ridge_bw = self.fig.roofs.first().map(|r| r.gbs);
        let from = |g: f64| ridge_bw.map_or(l, |bw| ax.px((g / bw).max(xmin)).max(l));

        // The lines: (y, from, colour, dashed, ceiling).
        let mut lines: Vec<(f64, f64, &'static str, bool, usize)> = Vec::new();
        let mut labels: Vec<(f64, String, &'static str)> = Vec::new();
        for (i, c) in self.fig.ceilings.iter().enumerate() {
            let col = colour(&c.arithmetic);
            let ye = ax.py(c.empirical);
            lines.push((ye, from(c.empirical), col, false, i));
            let names = if c.precisions.len() > 1 { format!("{} (computed in {})", c.precisions.join(", "), c.arithmetic) } else { c.arithmetic.clone() };
            let measured = format!("{} measured", rate(c.empirical));
            match c.theoretical {
                None => labels.push((ye, format!("{names}: {measured}, theoretical unknown"), col)),
                Some(th) => {
                    let yt = ax.py(th);
                    lines.push((yt, from(th), col, true, i));
                    if (yt - ye).abs() < CEILING_LINE {
                        labels.push(((yt + ye) / 2.0, format!("{names}: {measured}, {} theoretical", rate(th)), col));
                    } else {
                        labels.push((ye, format!("{names}: {measured}"), col));
                        labels.push((yt, format!("{names}: {} theoretical", rate(th)), col));
                    }
                }
            }
        }

        // Lines within COINCIDENT of each other form a bundle: the first drawn widest, each
        // next one 3 pixels narrower on top of it (solid under dashed), so every one shows.
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut start = 0;
        while start < lines.len() {
            let mut end = start + 1;
            while end < lines.len() && lines[end].0 - lines[end - 1].0 < COINCIDENT {
                end += 1;
            }
            let bundle = &mut lines[start..end];
            bundle.sort_by_key(|&(_, _, _, dashed, i)| (dashed, i));
            let n = bundle.len();
            for (k, &(y, x0, col, dashed, _)) in bundle.iter().enumerate() {
                let width = 2.0 + 3.0 * (n - 1 - k) as f64;
                if dashed {
                    // A white stroke under the dashes, so they show over a solid line of
                    // their own colour.
                    let _ = writeln!(self.lines, r#"<line x1="{x0:.1}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="white" stroke-width="{width}"/>"#);
                    let _ = writeln!(self.lines, r#"<line x1="{x0:.1}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="{col}" stroke-width="{width}" stroke-dasharray="7 5"/>"#);
                } else {
                    let _ = writeln!(self.lines, r#"<line x1="{x0:.1}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="{col}" stroke-width="{width}"/>"#);
                }
                self.taken.push(Quad::rect(x0, y - width / 2.0 - 1.0, r - x0, width + 2.0));
            }
            start = end;
        }

        // The labels: first line centred on its line's height, pushed down where the one
        // above needs the room, then up where the bottom is reached.
        labels.sort_by(|a, b| a.0.total_cmp(&b.0));
        let x = r + 14.0;
        let wrapped: Vec<Vec<String>> = labels.iter().map(|(_, text, _)| self.wrap(text, CEILING_FONT, W - 6.0 - x)).collect::<Result<_>>()?;
        let mut tops: Vec<f64> = labels.iter().map(|&(y, ..)| y - CEILING_LINE / 2.0).collect();
        let (top_min, bottom_max) = (t - 2.0, b + 6.0);
        let mut prev = top_min;
        for (top, lines) in tops.iter_mut().zip(&wrapped) {
            *top = top.max(prev);
            prev = *top + CEILING_LINE * lines.len() as f64 + 2.0;
        }
        let mut next = bottom_max + 2.0;
        for (top, lines) in tops.iter_mut().zip(&wrapped).rev() {
            *top = top.min(next - 2.0 - CEILING_LINE * lines.len() as f64);
            next = *top;
        }
        for (i, (((y, _, col), top), lines)) in labels.iter().zip(&tops).zip(&wrapped).enumerate() {
            let centre = top + CEILING_LINE / 2.0;
            if (centre - y).abs() > 2.0 {
                let _ = writeln!(self.leaders, r#"<polyline points="{r},{y:.1} {},{y:.1} {},{centre:.1}" fill="none" stroke="{col}" stroke-width="1"/>"#, r + 5.0, x - 3.0);
            }
            for (k, line) in lines.iter().enumerate() {
                let e = self.measure.get(line, CEILING_FONT)?;
                let baseline = top + k as f64 * CEILING_LINE + (CEILING_LINE - e.above - e.below) / 2.0 + e.above;
                let _ = writeln!(self.text, r#"<text id="ceiling-label-{i}-{k}" x="{x}" y="{baseline:.1}" font-size="{CEILING_FONT}" fill="{col}">{}</text>"#, esc(line));
            }
        }
        let _ = writeln!(self.text, r##"<text id="ceiling-header" x="{}" y="{}" font-size="11" fill="#555555">GFLOP/s; dashed: theoretical, solid: measured</text>"##, r + 8.0, t - 12.0);
        Ok(())
    }

    /// Each point's label at the first free place around its marker: beside it, then
    /// farther out, in eight directions (right first); else the nearest free place in the
    /// plot; inside the plot, under every roof, covering no marker, line or label, and
    /// joined to its marker by a line (crossing no marker or label) when not beside it.
    /// Labels are placed in record order; where one finds no free place, the placing starts
    /// again with it first (a few times at most), as a label boxed in by its neighbours'
    /// labels is free when placed before them.
    fn point_labels(&mut self, at: &[(f64, f64)]) -> Result<()> {
        let mut order: Vec<usize> = (0..self.fig.points.len()).collect();
        let (taken, labels, leaders, text) = (self.taken.len(), self.labels.len(), self.leaders.len(), self.text.len());
        for attempt in 0..4 {
            let stuck = self.place_point_labels(&order, at)?;
            if stuck.is_empty() || attempt == 3 {
                break;
            }
            self.taken.truncate(taken);
            self.labels.truncate(labels);
            self.leaders.truncate(leaders);
            self.text.truncate(text);
            order.retain(|i| !stuck.contains(i));
            order.splice(0..0, stuck);
        }
        Ok(())
    }

    /// Places the labels of the points in `order`; returns those that found no free place
    /// (placed beside their marker regardless).
    fn place_point_labels(&mut self, order: &[usize], at: &[(f64, f64)]) -> Result<Vec<usize>> {
        let (l, t, r, b) = PLOT;
        let mut stuck = Vec::new();
        for &i in order {
            let (p, (mx, my)) = (&self.fig.points[i], at[i]);
            let e = self.measure.get(&p.label, POINT_FONT)?;
            let (w, h) = (e.w, e.above + e.below);
            let directions = [(1.0, 0.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 0.0), (0.0, -1.0), (0.0, 1.0), (-1.0, -1.0), (-1.0, 1.0)];
            let distances = [0.0, 8.0, 18.0, 30.0, 45.0, 65.0, 90.0, 120.0, 160.0];
            let boxes = distances.iter().flat_map(|&d| {
                directions.map(|(dx, dy): (f64, f64)| {
                    let (cx, cy) = (mx + dx * (w / 2.0 + MARKER + 2.0 + d), my + dy * (h / 2.0 + MARKER + 1.0 + d));
                    (d, Quad::rect(cx - w / 2.0, cy - h / 2.0, w, h))
                })
            });
            let own = marker_box(mx, my);
            let leader_of = |q: &Quad| {
                let (x0, y0, x1, y1) = q.bounds();
                let (nx, ny) = (mx.clamp(x0, x1), my.clamp(y0, y1));
                let len = (nx - mx).hypot(ny - my);
                ((mx + (nx - mx) * MARKER / len, my + (ny - my) * MARKER / len), (nx, ny))
            };
            let free = |&(d, q): &(f64, Quad)| {
                let (x0, y0, ..) = q.bounds();
                q.within(l + 2.0, t + 2.0, r - 2.0, b - 2.0)
                    && self.under_roofs(x0, y0)
                    && self.taken.iter().all(|o| !q.overlaps(o))
                    && (d == 0.0 || {
                        let (a, z) = leader_of(&q);
                        let seg = Quad::segment(a, z, 0.5);
                        self.labels.iter().all(|o| *o == own || !seg.overlaps(o))
                    })
            };
            // Where every place around the marker is taken: the nearest free place anywhere
            // in the plot (a 4-pixel grid), else beside the marker regardless.
            let anywhere = || {
                let (nx, ny) = (((r - l - w) / 4.0).max(0.0) as usize, ((b - t - h) / 4.0).max(0.0) as usize);
                let mut grid: Vec<(f64, Quad)> = (0..nx * ny)
                    .map(|k| {
                        let (x, y) = (l + 2.0 + 4.0 * (k % nx) as f64, t + 2.0 + 4.0 * (k / nx) as f64);
                        ((x + w / 2.0 - mx).hypot(y + h / 2.0 - my), Quad::rect(x, y, w, h))
                    })
                    .collect();
                grid.sort_by(|a, b| a.0.total_cmp(&b.0));
                grid.into_iter().find(|c| free(c))
            };
            let Some((d, q)) = boxes.clone().find(free).or_else(anywhere).or_else(|| {
                stuck.push(i);
                boxes.clone().next()
            }) else {
                continue;
            };
            let (x0, y0, ..) = q.bounds();
            if d > 0.0 {
                let (a, z) = leader_of(&q);
                let _ = writeln!(self.leaders, r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="1"/>"#, a.0, a.1, z.0, z.1, colour(&p.arithmetic));
                self.taken.push(Quad::segment(a, z, 1.0));
            }
            self.taken.push(q);
            self.labels.push(q);
            let _ = writeln!(
                self.text,
                r#"<text id="point-label-{i}" x="{x0:.1}" y="{:.1}" font-size="{POINT_FONT}" fill="{}">{}</text>"#,
                y0 + e.above,
                colour(&p.arithmetic),
                esc(&p.label)
            );
        }
        Ok(stuck)
    }

    /// True when (x, y) lies below every bandwidth roof (by 2 pixels).
    fn under_roofs(&self, x: f64, y: f64) -> bool {
        let (l, _, r, _) = PLOT;
        let intensity = 10f64.powf(self.ax.x0 + (x - l) / (r - l) * (self.ax.x1 - self.ax.x0));
        self.fig.roofs.iter().all(|roof| y > self.ax.py(roof.gbs * intensity) + 2.0)
    }

    /// Splits `s` at spaces into lines at most `width` pixels wide (as drawn).
    fn wrap(&self, s: &str, size: f64, width: f64) -> Result<Vec<String>> {
        let mut lines = vec![String::new()];
        for word in s.split(' ') {
            let cur = lines.last().expect("one line");
            let joined = if cur.is_empty() { word.to_string() } else { format!("{cur} {word}") };
            if !cur.is_empty() && self.measure.get(&joined, size)?.w > width {
                lines.push(word.to_string());
            } else {
                *lines.last_mut().expect("one line") = joined;
            }
        }
        Ok(lines)
    }
}

/// The square a marker is kept in.
fn marker_box(x: f64, y: f64) -> Quad {
    Quad::rect(x - MARKER, y - MARKER, 2.0 * MARKER, 2.0 * MARKER)
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
            let _ = writeln!(s, r#"<text id="tick-x{d}" x="{x:.1}" y="{}" font-size="13" text-anchor="middle">{}</text>"#, b + 20.0, tick(d));
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
            let _ = writeln!(s, r#"<text id="tick-y{d}" x="{}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#, l - 8.0, y + 4.0, tick(d));
        }
        let _ = writeln!(s, r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#333333"/>"##, r - l, b - t);
        let _ = writeln!(s, r#"<text id="x-title" x="{}" y="{}" font-size="14" text-anchor="middle">arithmetic intensity, FLOP per byte of minimal traffic</text>"#, (l + r) / 2.0, b + 44.0);
        let _ = writeln!(s, r#"<text id="y-title" x="24" y="{}" font-size="14" text-anchor="middle" transform="rotate(-90 24 {})">GFLOP/s, all ranks</text>"#, (t + b) / 2.0, (t + b) / 2.0);
        let _ = writeln!(s, r#"<clipPath id="plot"><rect x="{l}" y="{t}" width="{}" height="{}"/></clipPath>"#, r - l, b - t);
    }
}

fn tick(d: i32) -> String {
    match d {
        0..=6 => format!("{}", 10u64.pow(d as u32)),
        -4..=-1 => format!("{}", 10f64.powi(d)),
        _ => format!("1e{d}"),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A convex quadrilateral on the picture, corners in order: the box of a label (rotated
/// with it), a marker, a line.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Quad([(f64, f64); 4]);

impl Quad {
    fn rect(x: f64, y: f64, w: f64, h: f64) -> Self {
        Quad([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
    }

    /// The box of a text of extent `e` whose baseline starts at (x, y).
    fn text(x: f64, y: f64, e: Extent) -> Self {
        Self::rect(x, y - e.above, e.w, e.above + e.below)
    }

    /// The segment from a to b, `half` pixels either side of it.
    fn segment(a: (f64, f64), b: (f64, f64), half: f64) -> Self {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = dx.hypot(dy).max(1e-9);
        let (nx, ny) = (-dy / len * half, dx / len * half);
        Quad([(a.0 + nx, a.1 + ny), (b.0 + nx, b.1 + ny), (b.0 - nx, b.1 - ny), (a.0 - nx, a.1 - ny)])
    }

    /// Rotated by `angle` radians about `c` (SVG's rotate: clockwise on the screen).
    fn rotated(self, angle: f64, c: (f64, f64)) -> Self {
        let (sin, cos) = angle.sin_cos();
        Quad(self.0.map(|(x, y)| (c.0 + (x - c.0) * cos - (y - c.1) * sin, c.1 + (x - c.0) * sin + (y - c.1) * cos)))
    }

    fn bounds(&self) -> (f64, f64, f64, f64) {
        let xs = self.0.map(|p| p.0);
        let ys = self.0.map(|p| p.1);
        let min = |v: [f64; 4]| v.into_iter().fold(f64::INFINITY, f64::min);
        let max = |v: [f64; 4]| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
        (min(xs), min(ys), max(xs), max(ys))
    }

    fn within(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> bool {
        self.0.iter().all(|&(x, y)| x >= x0 && x <= x1 && y >= y0 && y <= y1)
    }

    /// True when the two overlap by more than half a pixel (separating axis theorem: convex
    /// shapes are apart when their projections on some edge's normal are).
    fn overlaps(&self, o: &Quad) -> bool {
        for q in [self, o] {
            for i in 0..4 {
                let (a, b) = (q.0[i], q.0[(i + 1) % 4]);
                let (nx, ny) = (a.1 - b.1, b.0 - a.0);
                let len = nx.hypot(ny);
                if len < 1e-9 {
                    continue;
                }
                let project = |q: &Quad| {
                    let d = q.0.map(|(x, y)| (x * nx + y * ny) / len);
                    (d.into_iter().fold(f64::INFINITY, f64::min), d.into_iter().fold(f64::NEG_INFINITY, f64::max))
                };
                let ((lo1, hi1), (lo2, hi2)) = (project(self), project(o));
                if hi1 - lo2 < 0.5 || hi2 - lo1 < 0.5 {
                    return false;
                }
            }
        }
        true
    }
}

/// How much room a text takes as resvg draws it: its advance width, and how far its box
/// reaches above and below the baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Extent {
    w: f64,
    above: f64,
    below: f64,
}

/// Measures texts with the picture's font through resvg's own text layout (cached).
struct Measure {
    opt: usvg::Options<'static>,
    cache: RefCell<HashMap<(String, u64), Extent>>,
}

impl Measure {
    fn new() -> Self {
        Measure { opt: options(), cache: RefCell::new(HashMap::new()) }
    }

    fn get(&self, text: &str, size: f64) -> Result<Extent> {
        let key = (text.to_string(), size.to_bits());
        if let Some(e) = self.cache.borrow().get(&key) {
            return Ok(*e);
        }
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="200" font-family="{FONT_FAMILY}"><text id="t" x="10" y="100" font-size="{size}">{}</text></svg>"#,
            esc(text)
        );
        let tree = usvg::Tree::from_str(&svg, &self.opt).map_err(|e| Error::Report(format!("measuring the text {text:?}: {e}")))?;
        let e = match tree.node_by_id("t") {
            Some(usvg::Node::Text(t)) => {
                let bb = t.bounding_box();
                Extent { w: f64::from(bb.width()), above: 100.0 - f64::from(bb.top()), below: f64::from(bb.bottom()) - 100.0 }
            }
            // A text of spaces only has no box.
            _ => Extent { w: 0.0, above: 0.0, below: 0.0 },
        };
        self.cache.borrow_mut().insert(key, e);
        Ok(e)
    }
}

/// resvg options with the picture's font and nothing else.
fn options() -> usvg::Options<'static> {
    let mut opt = usvg::Options { font_family: FONT_FAMILY.to_string(), ..Default::default() };
    opt.fontdb_mut().load_font_data(FONT.to_vec());
    opt
}

/// Rasterises an SVG of this module to PNG.
pub fn write_png(svg: &str, path: &Path) -> Result<()> {
    let tree = usvg::Tree::from_str(svg, &options()).map_err(|e| Error::Report(format!("the roofline SVG does not parse: {e}")))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| Error::Report("empty roofline picture".into()))?;
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let png = pixmap.encode_png().map_err(|e| Error::io(format!("encoding {}", path.display()), std::io::Error::other(e.to_string())))?;
    std::fs::write(path, png).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests;
