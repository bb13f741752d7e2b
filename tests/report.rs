//! `effcal report`: the Markdown page and the roofline picture of a real (small) calibration:
//! every valid record is a labelled point, every precision has its ceiling, the PNG is the
//! rasterised SVG.

mod common;

use common::{effcal, ok, text, tmp};

#[test]
fn a_report_with_its_roofline() {
    let cfg = tmp("report-plan.toml");
    std::fs::write(
        &cfg,
        "[run]\nreps = 1\nwarmup = 0\n[peak]\nfma_seconds = 0.01\ntriad_elements = 262144\n\
         [gemm]\nn = 64\nprecisions = [\"f64\", \"bf16\"]\n[hpl_mxp]\nn = 128\nprecisions = [\"f64\"]\n\
         [stencil]\nkinds = [\"7pt\", \"himeno\"]\nprecisions = [\"f64\"]\nsize = [18, 10, 10]\niters = 1\n\
         [system]\nmemory_bandwidth_gbs = 80\n[system.sources]\nmemory_bandwidth_gbs = \"test figure\"\n",
    )
    .unwrap();
    let cal = tmp("report-cal.json");
    ok(&effcal(&["--threads", "1", "run", "--config", cfg.to_str().unwrap(), "--out", cal.to_str().unwrap()]));
    let dir = tmp("report");
    let _ = std::fs::remove_dir_all(&dir);
    let out = ok(&effcal(&["report", "--calibration", cal.to_str().unwrap(), "--out", dir.to_str().unwrap()]));
    assert!(out.contains("report.md") && out.contains("roofline.svg") && out.contains("roofline.png"), "{out}");

    let svg = std::fs::read_to_string(dir.join("roofline.svg")).unwrap();
    for label in ["gemm f64", "gemm bf16", "hpl-mxp f64", "7pt f64", "himeno f64"] {
        assert!(svg.contains(&format!(">{label}</text>")), "no point labelled {label}");
    }
    // A ceiling per arithmetic, shared by every format computed in it (f16 and FP8 in f32,
    // or FP8 in bf16 where its dot is the faster), named by its formats.
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    let computed_in = |p: &str| doc["peaks"]["per_precision"][p]["compute_precision"].as_str().unwrap().to_string();
    let all = ["f64", "f32", "bf16", "f16", "e4m3", "e5m2"];
    let mut arithmetics: Vec<String> = all.into_iter().map(computed_in).collect();
    arithmetics.dedup();
    assert!(arithmetics.contains(&"f32".to_string()), "{arithmetics:?}");
    for a in &arithmetics {
        let formats: Vec<&str> = all.into_iter().filter(|p| computed_in(p) == *a).collect();
        let ceiling = if formats.len() > 1 { format!("{} (computed in {a})", formats.join(", ")) } else { format!("{a}:") };
        assert!(svg.contains(&ceiling), "no ceiling {ceiling}");
    }
    assert!(svg.contains("STREAM triad") && svg.contains("memory, theoretical 80 GB/s"));
    let png = std::fs::read(dir.join("roofline.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian, at bytes 16..24.
    assert_eq!((u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap())), (1100, 740));

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert_eq!(md.matches("| PASSED |").count(), 5, "{md}");
    assert!(md.contains("![Roofline](roofline.svg)") && md.contains("Memory bandwidth, theoretical: 80.0 GB/s"), "{md}");

    let out = effcal(&["report", "--calibration", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --calibration"), "{}", text(&out.stderr));
}
