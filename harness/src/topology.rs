//! What this node is: cores, caches and NUMA nodes (hwloc), CPU features (CPUID), the
//! rank's binding (its cpuset), and the FLOP per cycle per core of each precision.

use effcal_kernels::Precision;
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

/// FLOP per cycle per core of one precision, and where the figure comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct FlopRate {
    pub per_cycle: f64,
    pub source: String,
}

/// FLOP per cycle per core for `p` on this CPU, from its vendor, family and features.
/// f16 and FP8 compute in f32 on CPUs, so they get the f32 figure. `None` where the CPU is
/// not in the table (a system config must then supply it).
pub fn flop_per_cycle(p: Precision) -> Option<FlopRate> {
    let (fma_bits, pipes, what) = vector_fma_units()?;
    let f64_lanes = (fma_bits / 64) as f64;
    let base = match p.compute() {
        Precision::F64 => f64_lanes * 2.0 * pipes,
        _ => f64_lanes * 4.0 * pipes,
    };
    let bf16_native = p == Precision::Bf16 && cpu_features().iter().any(|f| f == "avx512bf16");
    let (per_cycle, how) = if bf16_native {
        (base * 2.0, "; bf16 by vdpbf16ps: 2 products per f32 lane")
    } else if p.compute() != p && p != Precision::F32 {
        (base, "; computed in f32 (no native arithmetic)")
    } else {
        (base, "")
    };
    Some(FlopRate { per_cycle, source: format!("detected: {what}{how}") })
}

/// (FMA datapath width in bits, FMA pipes per core, description) for known CPUs.
fn vector_fma_units() -> Option<(u32, f64, String)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // CPUID leaves 0 and 1 exist on every x86-64 CPU.
        let (l0, l1) = (__cpuid(0), __cpuid(1));
        let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
        let vendor = String::from_utf8_lossy(&vendor).to_string();
        let base_family = (l1.eax >> 8) & 0xf;
        let family = if base_family == 0xf { base_family + ((l1.eax >> 20) & 0xff) } else { base_family };
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        let desc = |bits: u32, core: &str| format!("{vendor} family {family:#x} ({core}), 2 FMA pipes × {bits} bit");
        return match (vendor.as_str(), family) {
            ("AuthenticAMD", 0x17) => Some((256, 1.0, format!("{vendor} family {family:#x} (Zen 1/2), 256-bit FMA"))),
            ("AuthenticAMD", 0x19) => Some((256, 2.0, desc(256, "Zen 3/4: 512-bit ops run on 256-bit pipes"))),
            ("AuthenticAMD", 0x1a) if avx512 => Some((512, 2.0, desc(512, "Zen 5"))),
            ("GenuineIntel", _) if avx512 => Some((512, 2.0, desc(512, "AVX-512 server core"))),
            (_, _) if avx2 => Some((256, 2.0, desc(256, "AVX2+FMA"))),
            _ => None,
        };
    }
    #[allow(unreachable_code)]
    None
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
    fn cpu_lists_compress_ranges() {
        assert_eq!(super::cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(super::cpu_list(&[3]), "3");
        assert_eq!(super::cpu_list(&[]), "");
    }
}
