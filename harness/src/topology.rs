//! What this node is: cores, caches and NUMA nodes (hwloc), CPU features (CPUID), the
//! rank's binding (its cpuset), the vector width it exposes, and what it says of its clock.

use hwlocality::Topology;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::ObjectType;

/// Facts about the node one rank runs on.
#[derive(Clone, Debug)]
pub struct Node {
    pub host: String,
    pub cpu_model: String,
    /// Physical cores of the node.
    pub cores: usize,
    /// The cores of this rank's binding, each as its CPUs (hardware threads) inside the
    /// binding, in hwloc's order; one entry per CPU where hwloc fails.
    pub bound_cores: Vec<Vec<usize>>,
    /// The rank's cpuset as a list, e.g. "0-1" or "3".
    pub binding: String,
    pub numa_nodes: usize,
    /// Size of the largest (last-level) cache, bytes.
    pub llc_bytes: u64,
    pub features: Vec<String>,
    /// Memory this process may use on the node, bytes: MemTotal, or the cgroup's limit
    /// where that is lower (a batch job's allocation); 0 when unknown.
    pub memory_bytes: u64,
}

impl Node {
    pub fn detect() -> Self {
        let cpus = affinity();
        let binding = cpu_list(&cpus);
        let host = hostname();
        let mut node = Node {
            host,
            cpu_model: proc_cpuinfo_model().unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bound_cores: cpus.iter().map(|&c| vec![c]).collect(),
            binding,
            numa_nodes: 1,
            llc_bytes: 0,
            features: cpu_features(),
            memory_bytes: memory_bytes(),
        };
        if let Ok(topo) = Topology::new() {
            node.cores = topo.objects_with_type(ObjectType::Core).count().max(1);
            node.numa_nodes = topo.objects_with_type(ObjectType::NUMANode).count().max(1);
            node.llc_bytes = [ObjectType::L3Cache, ObjectType::L2Cache]
                .into_iter()
                .flat_map(|t| topo.objects_with_type(t))
                .filter_map(|o| match o.attributes() {
                    Some(ObjectAttributes::Cache(c)) => c.size().map(|s| s.get()),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            if let Some(model) = topo.objects_with_type(ObjectType::Package).find_map(|p| p.info("CPUModel")) {
                node.cpu_model = model.to_string_lossy().trim().to_string();
            }
            let cores: Vec<Vec<usize>> = topo
                .objects_with_type(ObjectType::Core)
                .filter_map(|core| {
                    let pus: Vec<usize> = core.cpuset()?.iter_set().map(usize::from).filter(|c| cpus.contains(c)).collect();
                    (!pus.is_empty()).then_some(pus)
                })
                .collect();
            if !cores.is_empty() {
                node.bound_cores = cores;
            }
        }
        node
    }
}

/// MemTotal from /proc/meminfo, lowered to this process's cgroup v2 limit (memory.max)
/// when that is set and smaller.
fn memory_bytes() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())))
        .map_or(0, |kb| kb * 1024);
    let limit = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .and_then(|path| std::fs::read_to_string(format!("/sys/fs/cgroup{}/memory.max", path.trim_end_matches('/'))).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match limit {
        Some(l) if l < total || total == 0 => l,
        _ => total,
    }
}

/// Where a rank's threads run: one core per thread.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// The CPUs of each thread's core.
    pub threads: Vec<Vec<usize>>,
    /// True when effcal divided a cpuset the ranks of a node share (the launcher did not
    /// bind them); false when it used the rank's own binding.
    pub divided: bool,
}

impl Placement {
    /// Places `threads` threads of the rank that is `local` of `local_ranks` on its node.
    /// `cores` is the rank's cpuset by core ([`Node::bound_cores`]); `shared` says whether every
    /// rank of the node has the same one. A shared cpuset is divided: local rank l takes
    /// cores l·threads.., so ranks get distinct cores while there are enough (beyond that
    /// they wrap around: oversubscribed, and effcal warns).
    pub fn new(cores: &[Vec<usize>], local: usize, local_ranks: usize, shared: bool, threads: usize) -> Self {
        if cores.is_empty() {
            return Placement { threads: Vec::new(), divided: false };
        }
        let divided = shared && local_ranks > 1;
        let first = if divided { local * threads } else { 0 };
        Placement { threads: (0..threads).map(|t| cores[(first + t) % cores.len()].clone()).collect(), divided }
    }

    /// Every CPU of the placement, sorted.
    pub fn cpus(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.threads.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Binds the calling thread (or, before threads start, the process) to `cpus`.
pub fn bind_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within CPU_SETSIZE (checked).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CPUs in this process's affinity mask.
fn affinity() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// "0-3,8" style list of CPU numbers.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if cpus[i] == start { start.to_string() } else { format!("{start}-{}", cpus[i]) });
        i += 1;
    }
    parts.join(",")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn proc_cpuinfo_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
}

/// The CPU features that matter to effcal's kernels, as the kernels detect them.
pub fn cpu_features() -> Vec<String> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut f = Vec::new();
        macro_rules! probe {
            ($($name:tt),*) => {$( if std::arch::is_x86_feature_detected!($name) { f.push($name.to_string()); } )*};
        }
        probe!("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16", "avx512fp16");
        f
    }
    #[cfg(not(target_arch = "x86_64"))]
    Vec::new()
}

/// The widest vector registers this CPU exposes to effcal's kernels, in bits: what the
/// microarchitecture table's figures are scaled to when a hypervisor hides part of it.
pub fn exposed_vector_bits(table_bits: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        let _ = table_bits;
        if std::arch::is_x86_feature_detected!("avx512f") {
            512
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            256
        } else {
            128
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("sve") { table_bits } else { 128 }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    table_bits
}

/// What the system says about the clock, beside what effcal measures. Every reading is
/// optional: a VM often has none of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatedClocks {
    /// CPUID leaf 0x16 (Intel): base and maximum frequency, MHz (0 = not given).
    pub cpuid_base_mhz: Option<u32>,
    pub cpuid_max_mhz: Option<u32>,
    /// cpufreq of cpu0: cpuinfo_max_freq and scaling_cur_freq, kHz; its driver; and the
    /// global boost switch where the driver has one.
    pub cpufreq_max_khz: Option<u64>,
    pub cpufreq_cur_khz: Option<u64>,
    pub cpufreq_driver: Option<String>,
    pub cpufreq_boost: Option<bool>,
    /// /proc/cpuinfo's "cpu MHz" of the first CPU (on VMs often the TSC rate).
    pub proc_cpuinfo_mhz: Option<f64>,
}

impl StatedClocks {
    /// Reads every source this system has.
    pub fn read() -> Self {
        let file = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
        let cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq";
        let (cpuid_base_mhz, cpuid_max_mhz) = cpuid_frequencies();
        StatedClocks {
            cpuid_base_mhz,
            cpuid_max_mhz,
            cpufreq_max_khz: file(&format!("{cpufreq}/cpuinfo_max_freq")).and_then(|v| v.parse().ok()),
            cpufreq_cur_khz: file(&format!("{cpufreq}/scaling_cur_freq")).and_then(|v| v.parse().ok()),
            cpufreq_driver: file(&format!("{cpufreq}/scaling_driver")),
            cpufreq_boost: file("/sys/devices/system/cpu/cpufreq/boost").map(|v| v == "1"),
            proc_cpuinfo_mhz: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| proc_cpuinfo_mhz(&t)),
        }
    }

    /// The highest clock the system states the core may run at, GHz, and where it says so.
    /// cpufreq's maximum counts unless it is acpi-cpufreq's with boost on (then it is the
    /// nominal clock and boost runs above it); CPUID 0x16's maximum counts where non-zero.
    /// /proc/cpuinfo's figure is a current or nominal clock, never a maximum.
    pub fn max_ghz(&self) -> Option<(f64, String)> {
        let boosted_nominal = self.cpufreq_driver.as_deref() == Some("acpi-cpufreq") && self.cpufreq_boost == Some(true);
        let cpufreq = self.cpufreq_max_khz.filter(|_| !boosted_nominal).map(|k| (k as f64 / 1e6, "cpufreq cpuinfo_max_freq".to_string()));
        let cpuid = self.cpuid_max_mhz.map(|m| (f64::from(m) / 1e3, "CPUID leaf 0x16 maximum".to_string()));
        [cpufreq, cpuid].into_iter().flatten().max_by(|a, b| a.0.total_cmp(&b.0))
    }
}

/// CPUID leaf 0x16's base and maximum MHz, where the CPU has the leaf and fills it.
fn cpuid_frequencies() -> (Option<u32>, Option<u32>) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        if __cpuid(0).eax >= 0x16 {
            let l = __cpuid(0x16);
            let nonzero = |v: u32| (v & 0xffff != 0).then_some(v & 0xffff);
            return (nonzero(l.eax), nonzero(l.ebx));
        }
    }
    (None, None)
}

/// The first "cpu MHz" of /proc/cpuinfo.
fn proc_cpuinfo_mhz(text: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "cpu MHz").then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::Placement;

    #[test]
    fn a_shared_cpuset_is_divided_among_the_ranks_of_a_node() {
        let cores: Vec<Vec<usize>> = (0..4).map(|c| vec![c, c + 4]).collect();
        // Two ranks × two threads on a node whose 4 cores (2 hardware threads each) they share.
        assert_eq!(Placement::new(&cores, 0, 2, true, 2).threads, vec![vec![0, 4], vec![1, 5]]);
        assert_eq!(Placement::new(&cores, 1, 2, true, 2).threads, vec![vec![2, 6], vec![3, 7]]);
        assert_eq!(Placement::new(&cores, 1, 2, true, 2).cpus(), vec![2, 3, 6, 7]);
        // Bound by the launcher: the rank's own cores, from the first.
        let own = Placement::new(&cores[2..], 1, 2, false, 2);
        assert_eq!((own.threads, own.divided), (vec![vec![2, 6], vec![3, 7]], false));
        // More threads than cores: they wrap around.
        assert_eq!(Placement::new(&cores[..1], 0, 1, false, 2).threads, vec![vec![0, 4], vec![0, 4]]);
        assert!(Placement::new(&[], 0, 1, false, 2).threads.is_empty());
    }

    #[test]
    fn the_stated_maximum_is_never_a_nominal_clock() {
        use super::StatedClocks;
        let none = StatedClocks::default();
        assert_eq!(none.max_ghz(), None);
        let vm = StatedClocks { proc_cpuinfo_mhz: Some(2596.158), ..none.clone() };
        assert_eq!(vm.max_ghz(), None, "/proc/cpuinfo is not a maximum");
        let pstate = StatedClocks { cpufreq_max_khz: Some(3_900_000), cpufreq_driver: Some("intel_pstate".into()), ..none.clone() };
        assert_eq!(pstate.max_ghz(), Some((3.9, "cpufreq cpuinfo_max_freq".into())));
        let acpi_boost = StatedClocks { cpufreq_driver: Some("acpi-cpufreq".into()), cpufreq_boost: Some(true), ..pstate.clone() };
        assert_eq!(acpi_boost.max_ghz(), None, "acpi-cpufreq's maximum is the nominal clock when boost is on");
        let intel = StatedClocks { cpuid_base_mhz: Some(2100), cpuid_max_mhz: Some(4000), ..acpi_boost };
        assert_eq!(intel.max_ghz(), Some((4.0, "CPUID leaf 0x16 maximum".into())));
        assert_eq!(super::proc_cpuinfo_mhz("processor\t: 0\ncpu MHz\t\t: 2596.158\n"), Some(2596.158));
    }

    #[test]
    fn cpu_lists_compress_ranges() {
        assert_eq!(super::cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(super::cpu_list(&[3]), "3");
        assert_eq!(super::cpu_list(&[]), "");
    }
}
