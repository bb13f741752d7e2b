use super::*;
use crate::calibration::PrecisionPeak;

/// Calibrations measured on the project machine (harness/tests/data/README.md).
const THIS_MACHINE: &str = include_str!("../../tests/data/roofline-this-machine.json");
const HPL_ONLY: &str = include_str!("../../tests/data/roofline-hpl-only.json");
const EVERY_KERNEL: &str = include_str!("../../tests/data/roofline-every-kernel.json");

fn calibration(json: &str) -> Calibration {
    serde_json::from_str(json).expect("a calibration")
}

fn peak<'a>(cal: &'a mut Calibration, p: &str) -> &'a mut PrecisionPeak {
    cal.peaks.as_mut().expect("peaks").per_precision.get_mut(p).expect("the precision's peak")
}

/// The every-kernel calibration as an Emerald Rapids would give it (peers.md): bf16 dot at
/// the f64 rate (32 FLOP/cycle each), native f16 FMA at four times it. Only the peaks change.
fn emerald_rapids_like() -> Calibration {
    let mut cal = calibration(EVERY_KERNEL);
    let f64_peak = peak(&mut cal, "f64").clone();
    let bf16 = peak(&mut cal, "bf16");
    (bf16.theoretical_gflops, bf16.empirical_gflops) = (f64_peak.theoretical_gflops, f64_peak.empirical_gflops);
    let f16 = peak(&mut cal, "f16");
    f16.compute_precision = "f16".into();
    (f16.theoretical_gflops, f16.empirical_gflops) = (f64_peak.theoretical_gflops.map(|t| 4.0 * t), 4.0 * f64_peak.empirical_gflops);
    cal
}

/// A text or a marker of a rendered picture, with its box as resvg lays it out.
#[derive(Debug)]
struct Drawn {
    id: String,
    text: String,
    quad: Quad,
}

/// Every text and marker of an SVG, through resvg (not through the layout's own sums).
fn drawn(svg: &str) -> Vec<Drawn> {
    fn collect(g: &usvg::Group, out: &mut Vec<Drawn>) {
        for node in g.children() {
            match node {
                usvg::Node::Group(g) => collect(g, out),
                usvg::Node::Text(t) => {
                    let (bb, tr) = (t.bounding_box(), t.abs_transform());
                    let corner = |x: f32, y: f32| {
                        let mut p = usvg::tiny_skia_path::Point::from_xy(x, y);
                        tr.map_point(&mut p);
                        (f64::from(p.x), f64::from(p.y))
                    };
                    let quad = Quad([corner(bb.left(), bb.top()), corner(bb.right(), bb.top()), corner(bb.right(), bb.bottom()), corner(bb.left(), bb.bottom())]);
                    out.push(Drawn { id: t.id().to_string(), text: t.chunks().iter().map(|c| c.text()).collect(), quad });
                }
                usvg::Node::Path(p) if p.id().starts_with("marker-") => {
                    let bb = p.abs_bounding_box();
                    let quad = Quad::rect(f64::from(bb.x()), f64::from(bb.y()), f64::from(bb.width()), f64::from(bb.height()));
                    out.push(Drawn { id: p.id().to_string(), text: String::new(), quad });
                }
                _ => {}
            }
        }
    }
    let tree = usvg::Tree::from_str(svg, &options()).expect("the picture parses");
    let mut out = Vec::new();
    collect(tree.root(), &mut out);
    out
}

/// Renders a calibration's roofline and checks its layout: every text inside the picture,
/// every point's and roof's label and every marker inside the plot, no two texts
/// overlapping, no text over a marker, no marker over another, and a label for every valid
/// record. Returns the SVG.
fn check_layout(name: &str, cal: &Calibration) -> String {
    let fig = Roofline::from_calibration(cal);
    let svg = fig.svg().expect("the picture");
    let items = drawn(&svg);
    let (l, t, r, b) = PLOT;
    for d in &items {
        assert!(d.quad.within(0.0, 0.0, W, H), "{name}: {d:?} is outside the picture");
        if ["point-label", "roof-label", "marker-"].iter().any(|p| d.id.starts_with(p)) {
            assert!(d.quad.within(l, t, r, b), "{name}: {d:?} is outside the plot");
        }
    }
    for (i, a) in items.iter().enumerate() {
        for z in &items[i + 1..] {
            assert!(!a.quad.overlaps(&z.quad), "{name}: {a:?} overlaps {z:?}");
        }
    }
    let valid: Vec<&Record> = cal.records.iter().filter(|r| r.valid).collect();
    let labels: Vec<&str> = items.iter().filter(|d| d.id.starts_with("point-label")).map(|d| d.text.as_str()).collect();
    assert_eq!(labels.len(), valid.len(), "{name}: {labels:?}");
    assert_eq!(items.iter().filter(|d| d.id.starts_with("marker-")).count(), valid.len(), "{name}");
    for p in &fig.points {
        assert!(labels.contains(&p.label.as_str()), "{name}: no label {}", p.label);
    }
    svg
}

#[test]
fn labels_never_overlap_and_stay_inside() {
    for (name, cal) in [
        ("this machine", calibration(THIS_MACHINE)),
        ("HPL-MxP only", calibration(HPL_ONLY)),
        ("every kernel", calibration(EVERY_KERNEL)),
        ("every kernel, Emerald Rapids-like peaks", emerald_rapids_like()),
    ] {
        let svg = check_layout(name, &cal);
        // The roofs are labelled where there are any.
        let roofs = cal.peaks.as_ref().map_or(0, |p| usize::from(p.stream_triad_gbs.is_some()) + usize::from(p.memory_bandwidth_gbs.is_some()));
        assert_eq!(svg.matches(r#"<text id="roof-label"#).count(), roofs, "{name}");
    }
}

#[test]
fn every_axis_has_at_least_four_ticks() {
    for (name, json) in [("this machine", THIS_MACHINE), ("HPL-MxP only", HPL_ONLY), ("every kernel", EVERY_KERNEL)] {
        let svg = Roofline::from_calibration(&calibration(json)).svg().unwrap();
        for axis in ["x", "y"] {
            let ticks = svg.matches(&format!(r#"<text id="tick-{axis}"#)).count();
            assert!(ticks >= 4, "{name}: {ticks} tick labels on {axis}");
        }
    }
}

/// The ceiling lines of a picture: (y, colour, width, dashed), from the SVG's text.
fn ceiling_lines(svg: &str) -> Vec<(f64, String, f64, bool)> {
    let attr = |line: &str, a: &str| line.split(&format!(" {a}=\"")).nth(1).and_then(|s| s.split('"').next()).map(str::to_string);
    svg.lines()
        .filter(|line| line.starts_with("<line") && attr(line, "x2").as_deref() == Some("790") && attr(line, "y1") == attr(line, "y2"))
        .filter(|line| attr(line, "stroke").as_deref() != Some("white"))
        .filter_map(|line| {
            let y = attr(line, "y1")?.parse().ok()?;
            let width = attr(line, "stroke-width")?.parse().ok()?;
            Some((y, attr(line, "stroke")?, width, line.contains("stroke-dasharray")))
        })
        .collect()
}

#[test]
fn coinciding_ceilings_are_all_visible() {
    // Emerald Rapids: f64 and bf16 dot both at 32 FLOP/cycle, so their ceilings coincide.
    let cal = emerald_rapids_like();
    let fig = Roofline::from_calibration(&cal);
    let svg = fig.svg().unwrap();
    let y = format!("{:.1}", fig.axes().py(peak(&mut cal.clone(), "f64").empirical_gflops));
    let at: Vec<_> = ceiling_lines(&svg).into_iter().filter(|(ly, ..)| format!("{ly:.1}") == y).collect();
    let solid: Vec<_> = at.iter().filter(|l| !l.3).collect();
    assert_eq!(solid.len(), 2, "{at:?}");
    let colours: Vec<&str> = solid.iter().map(|l| l.1.as_str()).collect();
    assert!(colours.contains(&colour("f64")) && colours.contains(&colour("bf16")), "{at:?}");
    // Nested: the one drawn first (underneath) is wider, so both show.
    assert!(solid[0].2 > solid[1].2, "{at:?}");
    // A theoretical line on its measured one is drawn narrower, dashed over white, on top.
    let lines = ceiling_lines(&Roofline::from_calibration(&calibration(HPL_ONLY)).svg().unwrap());
    for (y, col, width, dashed) in lines.iter().filter(|l| l.3) {
        let under = lines.iter().find(|l| !l.3 && &l.1 == col && (l.0 - y).abs() < COINCIDENT);
        if let Some(under) = under {
            assert!(under.2 > *width, "{under:?} under {:?}", (y, col, width, dashed));
        }
    }
}

#[test]
fn each_ceiling_is_labelled_at_its_own_height() {
    let mut cal = calibration(EVERY_KERNEL);
    // A theoretical peak far above the measured one (a configured clock the CPU never holds).
    let f64_peak = peak(&mut cal, "f64");
    let measured = f64_peak.empirical_gflops;
    f64_peak.theoretical_gflops = Some(3.0 * measured);
    let fig = Roofline::from_calibration(&cal);
    let svg = fig.svg().unwrap();
    let ax = fig.axes();
    let items = drawn(&svg);
    let centre_of = |text: &str| {
        let d = items.iter().find(|d| d.id.starts_with("ceiling-label") && d.text == text).unwrap_or_else(|| panic!("no label {text:?}: {items:?}"));
        let (_, y0, _, y1) = d.quad.bounds();
        (y0 + y1) / 2.0
    };
    let (m, th) = (centre_of(&format!("f64: {} measured", rate(measured))), centre_of(&format!("f64: {} theoretical", rate(3.0 * measured))));
    assert!((m - ax.py(measured)).abs() < 8.0, "measured label at {m}, line at {}", ax.py(measured));
    assert!((th - ax.py(3.0 * measured)).abs() < 8.0, "theoretical label at {th}, line at {}", ax.py(3.0 * measured));
}

#[test]
fn points_take_the_colour_of_the_ceiling_they_compute_on() {
    // Zen 4 has no f16 or FP8 arithmetic: those GEMMs and stencils compute in f32, bf16's
    // GEMM in bf16 (avx512-bf16), its stencils in f32. The older calibration has no
    // `arithmetic` in its records: the peaks' compute precision stands in.
    for json in [EVERY_KERNEL, THIS_MACHINE] {
        let fig = Roofline::from_calibration(&calibration(json));
        let point = |label: &str| fig.points.iter().find(|p| p.label == label).unwrap_or_else(|| panic!("no point {label}"));
        assert_eq!(point("gemm f16").arithmetic, "f32");
        assert_eq!(point("gemm e4m3").arithmetic, "f32");
        assert_eq!(point("gemm bf16").arithmetic, "bf16");
        assert_eq!(point("7pt bf16").arithmetic, "f32");
        assert_eq!(point("gemm f64").arithmetic, "f64");
        for p in &fig.points {
            assert!(fig.ceilings.iter().any(|c| c.arithmetic == p.arithmetic), "{} has no ceiling of its colour", p.label);
        }
        let svg = fig.svg().unwrap();
        let i = fig.points.iter().position(|p| p.label == "gemm f16").unwrap();
        assert!(svg.contains(&format!(r#"<circle id="marker-{i}" "#)) && svg.lines().any(|l| l.contains(&format!(r#"id="marker-{i}""#)) && l.contains(colour("f32"))));
    }
    // With native f16 (Emerald Rapids) the f16 ceiling is its own; the records say which
    // arithmetic they ran in, so today's f16 GEMM (converted to f32) stays under f32's.
    let fig = Roofline::from_calibration(&emerald_rapids_like());
    assert!(fig.ceilings.iter().any(|c| c.arithmetic == "f16" && c.precisions == ["f16"]));
    assert_eq!(fig.points.iter().find(|p| p.label == "gemm f16").unwrap().arithmetic, "f32");
}

#[test]
fn boxes_overlap_only_when_they_do() {
    let a = Quad::rect(0.0, 0.0, 10.0, 10.0);
    assert!(a.overlaps(&Quad::rect(5.0, 5.0, 10.0, 10.0)));
    assert!(!a.overlaps(&Quad::rect(10.0, 0.0, 10.0, 10.0)), "touching is not overlapping");
    assert!(!a.overlaps(&Quad::rect(11.0, 11.0, 5.0, 5.0)));
    // A rotated box whose bounding box would overlap, though the box does not.
    let long = Quad::rect(0.0, -2.0, 100.0, 4.0).rotated(std::f64::consts::FRAC_PI_4, (0.0, 0.0));
    assert!(!long.overlaps(&Quad::rect(60.0, 0.0, 10.0, 10.0)));
    assert!(long.overlaps(&Quad::rect(30.0, 30.0, 10.0, 10.0)));
    // A segment across a box.
    assert!(Quad::segment((-5.0, 5.0), (15.0, 5.0), 0.5).overlaps(&a));
}

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
}

#[test]
fn ceiling_labels_wrap_at_the_margin() {
    let pic = Measure::new();
    let one = pic.get("f32, f16, e4m3, e5m2", CEILING_FONT).unwrap();
    assert!(one.w > 100.0 && one.w < 200.0 && one.above > 8.0 && one.below > 1.0, "{one:?}");
    let fig = Roofline::from_calibration(&calibration(THIS_MACHINE));
    let p = Picture { fig: &fig, ax: fig.axes(), measure: pic, taken: Vec::new(), labels: Vec::new(), lines: String::new(), leaders: String::new(), markers: String::new(), text: String::new() };
    let lines = p.wrap("f32, f16, e4m3, e5m2 (computed in f32): 235 measured, 235 theoretical", CEILING_FONT, 280.0).unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(p.measure.get(line, CEILING_FONT).unwrap().w <= 280.0, "{line}");
    }
    assert_eq!(p.wrap("a bb", CEILING_FONT, 1000.0).unwrap(), vec!["a bb"]);
}
