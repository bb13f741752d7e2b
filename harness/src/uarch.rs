//! The microarchitecture table: FLOP (INT8: operations) per cycle per core of each
//! arithmetic, as data (configs/microarch.toml, built in), keyed by CPUID vendor, family,
//! model and stepping on x86-64 and by MIDR implementer and part on aarch64, each entry with
//! its source. Rates are never inferred from ISA flags: a flag says an instruction exists,
//! the table says how fast it runs, and the guard (calibration::Peaks::guard) checks the table
//! against the measured rates.

use effcal_kernels::peak::fma::Arith;
use serde::Deserialize;
use std::fmt;
use std::sync::OnceLock;

/// configs/microarch.toml, built in.
pub const TABLE_TOML: &str = include_str!("../../configs/microarch.toml");

/// Who the CPU is, as the table keys it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuId {
    /// CPUID: leaf 0's vendor string, leaf 1's display family and model, and stepping.
    X86 { vendor: String, family: u32, model: u32, stepping: u32 },
    /// MIDR_EL1's implementer and part number.
    Arm { implementer: u32, part: u32 },
}

impl CpuId {
    /// The CPU this runs on; `None` where it cannot be identified.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::__cpuid;
            // CPUID leaves 0 and 1 exist on every x86-64 CPU.
            let (l0, l1) = (__cpuid(0), __cpuid(1));
            Some(Self::from_x86_leaves([l0.ebx, l0.edx, l0.ecx], l1.eax))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self::from_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
        }
    }

    /// From CPUID leaf 0's EBX, EDX, ECX (the vendor string in that order) and leaf 1's EAX,
    /// with the display family and model of Intel's SDM (vol. 2A, CPUID): the extended
    /// family is added when the base family is 0xF; the extended model is prepended when
    /// the base family is 0x6 or 0xF.
    pub fn from_x86_leaves(vendor: [u32; 3], eax1: u32) -> Self {
        let vendor: Vec<u8> = vendor.iter().flat_map(|r| r.to_le_bytes()).collect();
        let base_family = (eax1 >> 8) & 0xf;
        let family = if base_family == 0xf { base_family + ((eax1 >> 20) & 0xff) } else { base_family };
        let model = if base_family == 0x6 || base_family == 0xf { (eax1 >> 4) & 0xf | ((eax1 >> 16) & 0xf) << 4 } else { (eax1 >> 4) & 0xf };
        Self::X86 { vendor: String::from_utf8_lossy(&vendor).into_owned(), family, model, stepping: eax1 & 0xf }
    }

    /// From /proc/cpuinfo on aarch64 ("CPU implementer : 0x46", "CPU part : 0x001"; the
    /// first core's).
    pub fn from_cpuinfo(text: &str) -> Option<Self> {
        let field = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| u32::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok())?
            })
        };
        Some(Self::Arm { implementer: field("CPU implementer")?, part: field("CPU part")? })
    }
}

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X86 { vendor, family, model, stepping } => write!(f, "{vendor} family {family:#x} model {model:#x} ({model}) stepping {stepping}"),
            Self::Arm { implementer, part } => write!(f, "MIDR implementer {implementer:#04x} part {part:#05x}"),
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub vendor: Option<String>,
    pub family: Option<u32>,
    #[serde(default)]
    pub models: Vec<[u32; 2]>,
    pub steppings: Option<[u32; 2]>,
    pub implementer: Option<u32>,
    #[serde(default)]
    pub parts: Vec<u32>,
    pub vector_bits: u32,
    pub datapath_bits: u32,
    /// The counts of FMA units the parts of this model may have; the figures are for the
    /// last (largest).
    #[serde(default)]
    pub fma_units: Vec<u32>,
    pub f64: f64,
    pub f32: f64,
    pub bf16: Option<f64>,
    pub f16: Option<f64>,
    pub int8: Option<f64>,
    pub source: String,
}

impl Entry {
    /// The table's figure for `a` (per core per cycle, at the full vector width and the
    /// largest count of FMA units); `None` where the core has no such instruction.
    pub fn figure(&self, a: Arith) -> Option<f64> {
        match a {
            Arith::F64 => Some(self.f64),
            Arith::F32 => Some(self.f32),
            Arith::Bf16Dot => self.bf16,
            Arith::F16 => self.f16,
            Arith::Int8Dot => self.int8,
        }
    }

    /// The figure for `a` on a CPU that exposes vectors of `exposed_bits` (narrower than the
    /// datapath: the figure shrinks in proportion) with `units` FMA units (where the model
    /// covers several counts).
    pub fn per_cycle(&self, a: Arith, exposed_bits: u32, units: Option<u32>) -> Option<f64> {
        let width = (f64::from(exposed_bits) / f64::from(self.datapath_bits)).min(1.0);
        let share = match (units, self.fma_units.last()) {
            (Some(u), Some(&max)) => f64::from(u) / f64::from(max),
            _ => 1.0,
        };
        Some(self.figure(a)? * width * share)
    }

    /// Where the model covers parts with different counts of FMA units: the count whose
    /// f64 figure is nearest (in ratio) to the measured f64 FLOP per cycle per core.
    pub fn units_for(&self, measured_f64_per_cycle: f64, exposed_bits: u32) -> Option<u32> {
        if self.fma_units.len() < 2 || measured_f64_per_cycle.is_nan() || measured_f64_per_cycle <= 0.0 {
            return None;
        }
        let distance = |u: u32| (measured_f64_per_cycle / self.per_cycle(Arith::F64, exposed_bits, Some(u)).unwrap_or(f64::NAN)).ln().abs();
        self.fma_units.iter().copied().min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
    }

    fn matches(&self, id: &CpuId) -> bool {
        let within = |x: u32, r: &[u32; 2]| r[0] <= x && x <= r[1];
        match id {
            CpuId::X86 { vendor, family, model, stepping } => {
                self.vendor.as_deref() == Some(vendor.as_str())
                    && self.family == Some(*family)
                    && self.models.iter().any(|r| within(*model, r))
                    && self.steppings.is_none_or(|r| within(*stepping, &r))
            }
            CpuId::Arm { implementer, part } => self.implementer == Some(*implementer) && self.parts.contains(part),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cpu: Vec<Entry>,
}

/// The table's entries.
#[derive(Clone, Debug)]
pub struct Table {
    pub entries: Vec<Entry>,
}

impl Table {
    /// Parses and checks a table: each entry keyed either for x86-64 (vendor, family,
    /// models) or for aarch64 (implementer, parts), positive figures, a source, and no CPU
    /// matched by two entries.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        for e in &file.cpu {
            let x86 = e.vendor.is_some() && e.family.is_some() && !e.models.is_empty();
            let arm = e.implementer.is_some() && !e.parts.is_empty();
            if x86 == arm {
                return Err(format!("cpu '{}': give vendor, family and models (x86-64) or implementer and parts (aarch64)", e.name));
            }
            let figures = [Some(e.f64), Some(e.f32), e.bf16, e.f16, e.int8];
            if figures.iter().flatten().any(|f| !(*f > 0.0 && f.is_finite())) || e.vector_bits == 0 || e.datapath_bits == 0 || e.source.trim().is_empty() {
                return Err(format!("cpu '{}': figures and widths must be positive, and a source given", e.name));
            }
            if e.fma_units.windows(2).any(|w| w[0] >= w[1]) || e.fma_units.contains(&0) {
                return Err(format!("cpu '{}': fma_units must be increasing counts ≥ 1", e.name));
            }
        }
        let table = Table { entries: file.cpu };
        for id in table.sample_ids() {
            let hits: Vec<&str> = table.entries.iter().filter(|e| e.matches(&id)).map(|e| e.name.as_str()).collect();
            if hits.len() > 1 {
                return Err(format!("{id} matches more than one entry: {}", hits.join(", ")));
            }
        }
        Ok(table)
    }

    /// The built-in table (configs/microarch.toml); a test keeps it valid.
    pub fn builtin() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| Table::parse(TABLE_TOML).expect("configs/microarch.toml is checked by the tests"))
    }

    pub fn lookup(&self, id: &CpuId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.matches(id))
    }

    /// One CPU at each end of every range of every entry: the fixtures that tell whether two
    /// entries overlap, and whether each entry is reachable.
    pub fn sample_ids(&self) -> Vec<CpuId> {
        let mut ids = Vec::new();
        for e in &self.entries {
            if let (Some(vendor), Some(family)) = (&e.vendor, e.family) {
                let steppings = e.steppings.unwrap_or([0, 15]);
                for m in &e.models {
                    for model in [m[0], m[1]] {
                        for stepping in steppings {
                            ids.push(CpuId::X86 { vendor: vendor.clone(), family, model, stepping });
                        }
                    }
                }
            }
            if let Some(implementer) = e.implementer {
                ids.extend(e.parts.iter().map(|&part| CpuId::Arm { implementer, part }));
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPUID leaf 1 EAX for a display family, model and stepping (the inverse of the
    /// decoding, as the SDM lays the fields out).
    fn eax1(family: u32, model: u32, stepping: u32) -> u32 {
        let (base, ext_family) = if family >= 0xf { (0xf, family - 0xf) } else { (family, 0) };
        ext_family << 20 | (model >> 4) << 16 | base << 8 | (model & 0xf) << 4 | stepping
    }

    fn vendor(s: &str) -> [u32; 3] {
        let b = s.as_bytes();
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        [word(0), word(4), word(8)]
    }

    fn x86(v: &str, family: u32, model: u32, stepping: u32) -> CpuId {
        CpuId::from_x86_leaves(vendor(v), eax1(family, model, stepping))
    }

    #[test]
    fn cpuid_leaves_decode_to_display_family_and_model() {
        // Real leaf-1 values: Zen 4 Genoa (A10F11), Emerald Rapids (C06F2), Cascade Lake (50657).
        assert_eq!(CpuId::from_x86_leaves(vendor("AuthenticAMD"), 0x00a1_0f11), CpuId::X86 { vendor: "AuthenticAMD".into(), family: 0x19, model: 0x11, stepping: 1 });
        assert_eq!(CpuId::from_x86_leaves(vendor("GenuineIntel"), 0x000c_06f2), CpuId::X86 { vendor: "GenuineIntel".into(), family: 6, model: 207, stepping: 2 });
        assert_eq!(CpuId::from_x86_leaves(vendor("GenuineIntel"), 0x0005_0657), CpuId::X86 { vendor: "GenuineIntel".into(), family: 6, model: 0x55, stepping: 7 });
        assert_eq!(x86("GenuineIntel", 6, 207, 2).to_string(), "GenuineIntel family 0x6 model 0xcf (207) stepping 2");
    }

    #[test]
    fn midr_from_proc_cpuinfo() {
        let a64fx = "processor\t: 0\nBogoMIPS\t: 200.00\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x46\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0x001\nCPU revision\t: 0\n";
        assert_eq!(CpuId::from_cpuinfo(a64fx), Some(CpuId::Arm { implementer: 0x46, part: 0x001 }));
        assert_eq!(CpuId::from_cpuinfo("processor : 0\n"), None);
        assert_eq!(CpuId::Arm { implementer: 0x41, part: 0xd4f }.to_string(), "MIDR implementer 0x41 part 0xd4f");
    }

    /// Every entry, by a CPU identity of its own, with its figures per core per cycle:
    /// (fixture, entry, f64, f32, bf16, f16, int8).
    #[test]
    fn every_entry_is_found_with_its_figures() {
        type Row = (CpuId, &'static str, f64, f64, Option<f64>, Option<f64>, Option<f64>);
        let arm = |implementer, part| CpuId::Arm { implementer, part };
        let rows: Vec<Row> = vec![
            (x86("AuthenticAMD", 0x17, 0x01, 2), "AMD Zen 1", 8.0, 16.0, None, None, None),
            (x86("AuthenticAMD", 0x17, 0x31, 0), "AMD Zen 2", 16.0, 32.0, None, None, None),
            (x86("AuthenticAMD", 0x19, 0x01, 1), "AMD Zen 3", 16.0, 32.0, None, None, None),
            (x86("AuthenticAMD", 0x19, 0x11, 1), "AMD Zen 4", 16.0, 32.0, Some(64.0), None, Some(128.0)),
            (x86("AuthenticAMD", 0x19, 0x61, 2), "AMD Zen 4", 16.0, 32.0, Some(64.0), None, Some(128.0)),
            (x86("AuthenticAMD", 0x1a, 0x02, 1), "AMD Zen 5", 32.0, 64.0, Some(128.0), None, Some(256.0)),
            (x86("AuthenticAMD", 0x1a, 0x24, 0), "AMD Zen 5 (256-bit datapath: Strix Point, Krackan Point)", 16.0, 32.0, Some(64.0), None, Some(128.0)),
            (x86("GenuineIntel", 6, 0x55, 4), "Intel Skylake-SP", 32.0, 64.0, None, None, None),
            (x86("GenuineIntel", 6, 0x55, 7), "Intel Cascade Lake", 32.0, 64.0, None, None, Some(256.0)),
            (x86("GenuineIntel", 6, 0x55, 11), "Intel Cooper Lake", 32.0, 64.0, None, None, Some(256.0)),
            (x86("GenuineIntel", 6, 0x6a, 6), "Intel Ice Lake-SP", 32.0, 64.0, None, None, Some(256.0)),
            (x86("GenuineIntel", 6, 143, 8), "Intel Sapphire Rapids", 32.0, 64.0, Some(32.0), Some(128.0), Some(256.0)),
            (x86("GenuineIntel", 6, 207, 2), "Intel Emerald Rapids", 32.0, 64.0, Some(32.0), Some(128.0), Some(256.0)),
            (x86("GenuineIntel", 6, 173, 1), "Intel Granite Rapids", 32.0, 64.0, Some(32.0), Some(128.0), Some(256.0)),
            (arm(0x46, 0x001), "Fujitsu A64FX", 32.0, 64.0, None, Some(128.0), Some(256.0)),
            (arm(0x41, 0xd49), "Arm Neoverse N2", 8.0, 16.0, Some(32.0), Some(32.0), Some(64.0)),
            (arm(0x41, 0xd40), "Arm Neoverse V1", 16.0, 32.0, Some(64.0), Some(64.0), Some(128.0)),
            (arm(0x41, 0xd4f), "Arm Neoverse V2 (NVIDIA Grace)", 16.0, 32.0, Some(64.0), Some(64.0), Some(128.0)),
        ];
        let table = Table::builtin();
        for (id, name, f64_, f32_, bf16, f16, int8) in &rows {
            let e = table.lookup(id).unwrap_or_else(|| panic!("{id}: not in the table"));
            assert_eq!(&e.name, name, "{id}");
            let full = |a| e.per_cycle(a, e.vector_bits, None);
            assert_eq!([full(Arith::F64), full(Arith::F32), full(Arith::Bf16Dot), full(Arith::F16), full(Arith::Int8Dot)], [Some(*f64_), Some(*f32_), *bf16, *f16, *int8], "{name}");
            assert!(!e.source.is_empty());
        }
        // Every entry is reached by a fixture above.
        for e in &table.entries {
            assert!(rows.iter().any(|r| r.1 == e.name), "no fixture for {}", e.name);
        }
        // Not in the table: an Intel Haswell, a Hygon, an Apple core.
        for id in [x86("GenuineIntel", 6, 0x3f, 2), x86("HygonGenuine", 0x18, 0, 1), arm(0x61, 0x022)] {
            assert_eq!(table.lookup(&id), None, "{id}");
        }
    }

    #[test]
    fn units_and_vector_width_scale_the_figures() {
        let table = Table::builtin();
        let skx = table.lookup(&x86("GenuineIntel", 6, 0x55, 4)).unwrap();
        // A Gold 6xxx measures near 32 f64 FLOP/cycle, a Silver near 16.
        assert_eq!(skx.units_for(29.5, 512), Some(2));
        assert_eq!(skx.units_for(15.2, 512), Some(1));
        assert_eq!(skx.per_cycle(Arith::F64, 512, Some(1)), Some(16.0));
        assert_eq!(skx.per_cycle(Arith::F32, 512, Some(1)), Some(32.0));
        // One count only: no choice to make.
        let zen4 = table.lookup(&x86("AuthenticAMD", 0x19, 0x11, 1)).unwrap();
        assert_eq!(zen4.units_for(16.0, 512), None);
        // AVX-512 hidden by a hypervisor: Zen 4's 256-bit pipes lose nothing, Sapphire
        // Rapids' 512-bit units compute half as much with 256-bit vectors.
        assert_eq!(zen4.per_cycle(Arith::F64, 256, None), Some(16.0));
        let spr = table.lookup(&x86("GenuineIntel", 6, 143, 8)).unwrap();
        assert_eq!(spr.per_cycle(Arith::F64, 256, None), Some(16.0));
    }

    #[test]
    fn bad_tables_are_refused_by_entry() {
        let base = "[[cpu]]\nname = \"X\"\nvector_bits = 256\ndatapath_bits = 256\nf64 = 16\nf32 = 32\nsource = \"s\"\n";
        let e = Table::parse(base).unwrap_err();
        assert_eq!(e, "cpu 'X': give vendor, family and models (x86-64) or implementer and parts (aarch64)");
        let keyed = format!("{base}vendor = \"V\"\nfamily = 6\nmodels = [[1, 3]]\n");
        assert!(Table::parse(&keyed).is_ok());
        let twice = format!("{keyed}{}", keyed.replace("\"X\"", "\"Y\"").replace("[[1, 3]]", "[[3, 4]]"));
        assert_eq!(Table::parse(&twice).unwrap_err(), "V family 0x6 model 0x3 (3) stepping 0 matches more than one entry: X, Y");
        assert!(Table::parse(&keyed.replace("f64 = 16", "f64 = 0")).unwrap_err().contains("must be positive"));
        assert!(Table::parse(&format!("{keyed}fma_units = [2, 1]\n")).unwrap_err().contains("fma_units"));
        assert!(Table::parse(&format!("{keyed}bogus = 1\n")).unwrap_err().contains("unknown field"));
    }
}
