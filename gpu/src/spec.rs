//! The GPU table: each GPU's stated peaks per arithmetic, memory and power, as data
//! (configs/gpus.toml, built in), each entry with its source, found by the device's name.
//! A stated peak is the denominator of an efficiency, never a result: the run measures
//! each arithmetic and the guard compares the two.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// configs/gpus.toml, built in.
pub const TABLE_TOML: &str = include_str!("../../configs/gpus.toml");

/// The arithmetics the table states, in its order: the keys of `dense` and `sparse`.
pub const ARITHMETICS: [&str; 9] = ["f64", "f64_fma", "f32", "tf32", "bf16", "f16", "e4m3", "e5m2", "int8"];

/// One GPU's entry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    /// Texts of the device name that select this entry (the longest match wins).
    pub names: Vec<String>,
    pub source: String,
    pub memory_gb: f64,
    /// GB/s, 1e9 B/s.
    pub memory_bandwidth_gbs: f64,
    /// The stated maximum board power, W.
    pub power_w: f64,
    /// TFLOP/s (TOPS for int8) without sparsity, keyed as [`ARITHMETICS`].
    pub dense: BTreeMap<String, f64>,
    /// The datasheet's "with sparsity" figures (2:4 structured).
    #[serde(default)]
    pub sparse: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    gpu: Vec<Spec>,
}

/// Parses a table in the configs/gpus.toml format, checking every key.
pub fn parse(text: &str) -> Result<Vec<Spec>, String> {
    let table: Table = toml::from_str(text).map_err(|e| e.to_string())?;
    for g in &table.gpu {
        for key in g.dense.keys().chain(g.sparse.keys()) {
            if !ARITHMETICS.contains(&key.as_str()) {
                return Err(format!("gpu '{}': unknown arithmetic '{key}' (allowed: {})", g.name, ARITHMETICS.join(", ")));
            }
        }
        if let Some((key, v)) = g.dense.iter().chain(&g.sparse).find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
            return Err(format!("gpu '{}': {key} = {v}: a peak is a positive number of TFLOP/s", g.name));
        }
        if g.names.is_empty() {
            return Err(format!("gpu '{}': names is empty: give the text of the device name that selects it", g.name));
        }
    }
    Ok(table.gpu)
}

/// The built-in table.
pub fn table() -> &'static [Spec] {
    static TABLE: OnceLock<Vec<Spec>> = OnceLock::new();
    TABLE.get_or_init(|| parse(TABLE_TOML).expect("configs/gpus.toml is valid (a test checks it)"))
}

/// The entry of the device named `device_name`: the one with the longest of its `names`
/// found in it (case-insensitive); None when no entry matches.
pub fn find<'a>(table: &'a [Spec], device_name: &str) -> Option<&'a Spec> {
    let device = device_name.to_ascii_lowercase();
    table
        .iter()
        .filter_map(|s| s.names.iter().filter(|n| device.contains(&n.to_ascii_lowercase())).map(|n| (n.len(), s)).max_by_key(|m| m.0))
        .max_by_key(|m| m.0)
        .map(|m| m.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_select_the_right_entries() {
        let t = table();
        let name = |device: &str| find(t, device).map(|s| s.name.as_str());
        // Device names as cuDeviceGetName / nvidia-smi print them.
        assert_eq!(name("NVIDIA H100 80GB HBM3"), Some("NVIDIA H100 SXM5 80GB"));
        assert_eq!(name("NVIDIA H100 PCIe"), Some("NVIDIA H100 PCIe 80GB"));
        assert_eq!(name("NVIDIA H100 NVL"), Some("NVIDIA H100 NVL 94GB"));
        assert_eq!(name("NVIDIA H200"), Some("NVIDIA H200 SXM 141GB"));
        assert_eq!(name("NVIDIA H200 NVL"), Some("NVIDIA H200 NVL 141GB"), "the longer match wins");
        assert_eq!(name("NVIDIA GH200 480GB"), Some("NVIDIA GH200 (H100 GPU, 96 GB HBM3)"));
        assert_eq!(name("NVIDIA GH200 144G HBM3e"), Some("NVIDIA GH200 (H100 GPU, 144 GB HBM3e)"));
        assert_eq!(name("NVIDIA B200"), Some("NVIDIA B200 (HGX B200, per GPU)"));
        assert_eq!(name("NVIDIA A100-SXM4-80GB"), Some("NVIDIA A100 SXM4 80GB"));
        assert_eq!(name("NVIDIA A100 80GB PCIe"), Some("NVIDIA A100 PCIe 80GB"));
        assert_eq!(name("NVIDIA A100-PCIE-40GB"), Some("NVIDIA A100 PCIe 40GB"));
        assert_eq!(name("NVIDIA GeForce RTX 4090"), None);

        let h200 = find(t, "NVIDIA H200").unwrap();
        assert_eq!((h200.dense["bf16"], h200.dense["e4m3"], h200.dense["f64"], h200.memory_bandwidth_gbs), (989.4, 1978.9, 67.0, 4800.0));
        for s in t {
            // Sparsity doubles the tensor-core rate; the A100 has no FP8.
            for (k, v) in &s.sparse {
                assert!((v / s.dense[k] - 2.0).abs() < 2e-3, "{}: {k} sparse {v} is not twice dense {}", s.name, s.dense[k]);
            }
            assert!(s.dense.contains_key("f64") && s.dense.contains_key("f32") && s.dense.contains_key("bf16"), "{}", s.name);
            assert!(s.dense["f64_fma"] <= s.dense["f64"] && s.dense["bf16"] > s.dense["f32"], "{}", s.name);
        }
    }

    #[test]
    fn bad_tables_are_refused_naming_the_entry_and_key() {
        let entry = |dense: &str| format!("[[gpu]]\nname = \"X\"\nnames = [\"X\"]\nsource = \"s\"\nmemory_gb = 1\nmemory_bandwidth_gbs = 1\npower_w = 1\ndense = {{ {dense} }}\n");
        assert_eq!(parse(&entry("fp8 = 1")).unwrap_err(), "gpu 'X': unknown arithmetic 'fp8' (allowed: f64, f64_fma, f32, tf32, bf16, f16, e4m3, e5m2, int8)");
        assert_eq!(parse(&entry("f64 = -1")).unwrap_err(), "gpu 'X': f64 = -1: a peak is a positive number of TFLOP/s");
        assert!(parse(&entry("f64 = 1").replace("[\"X\"]", "[]")).unwrap_err().contains("names is empty"));
        assert!(parse(&(entry("f64 = 1") + "colour = 1\n")).unwrap_err().contains("colour"));
    }
}
