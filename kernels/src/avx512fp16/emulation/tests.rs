//! The decoder on the assembler's encodings; each instruction form the kernels use, run
//! (natively on AVX512_FP16, emulated elsewhere) against the correctly rounded lanes; and
//! the tests of the native kernels, run in a child process with the emulation on.

use super::*;

/// `as` (binutils 2.40) encodings, padded to 15 bytes.
fn code(bytes: &[u8]) -> [u8; 15] {
    std::array::from_fn(|i| bytes.get(i).copied().unwrap_or(0x90))
}

#[test]
fn the_decoder_reads_the_assemblers_encodings() {
    let mem = |base: Option<usize>, index: Option<(usize, u64)>, disp: i64| Operand::Mem { base, index, disp };
    let cases = [
        (&[0x62, 0xf5, 0x6c, 0x48, 0x58, 0xcb][..], Op::Add, 1, 2, Operand::Zmm(3), 6), // vaddph zmm1, zmm2, zmm3
        (&[0x62, 0xa5, 0x0c, 0x40, 0x59, 0xcd], Op::Mul, 17, 30, Operand::Zmm(21), 6), // vmulph zmm17, zmm30, zmm21
        (&[0x62, 0x16, 0x1d, 0x48, 0xb8, 0xcc], Op::Fma231, 9, 12, Operand::Zmm(28), 6), // vfmadd231ph zmm9, zmm12, zmm28
        (&[0x62, 0xf5, 0x54, 0x48, 0x58, 0x20], Op::Add, 4, 5, mem(Some(0), None, 0), 6), // [rax]
        (&[0x62, 0xe5, 0x4c, 0x48, 0x59, 0x62, 0x01], Op::Mul, 20, 6, mem(Some(2), None, 64), 7), // [rdx + 64]
        (&[0x62, 0xf6, 0x05, 0x40, 0xb8, 0x86, 0x02, 0, 0, 0], Op::Fma231, 0, 31, mem(Some(6), None, 2), 10), // [rsi + 2]
        (&[0x62, 0x55, 0x14, 0x48, 0x58, 0x5d, 0x00], Op::Add, 11, 13, mem(Some(13), None, 0), 7), // [r13]
        (&[0x62, 0x46, 0x65, 0x48, 0xb8, 0x54, 0x24, 0x01], Op::Fma231, 26, 3, mem(Some(12), None, 64), 8), // [r12 + 64]
        (&[0x62, 0x75, 0x7c, 0x40, 0x59, 0x84, 0x79, 0x06, 0, 0, 0], Op::Mul, 8, 16, mem(Some(1), Some((7, 2)), 6), 11), // [rcx + rdi*2 + 6]
        (&[0x62, 0x95, 0x6c, 0x48, 0x58, 0x54, 0xca, 0xff], Op::Add, 2, 2, mem(Some(10), Some((9, 8)), -64), 8), // [r10 + r9*8 - 64]
    ];
    for (bytes, op, dst, src1, src2, len) in cases {
        assert_eq!(decode(&code(bytes)), Ok(Insn { op, dst, src1, src2, len }), "{bytes:02x?}");
    }
    for (bytes, why) in [
        (&[0x62, 0xf5, 0x6c, 0x49, 0x58, 0xcb][..], "a masked form"),                            // vaddph zmm1{k1}, …
        (&[0x62, 0xf5, 0x6c, 0x58, 0x58, 0x08], "broadcast or embedded rounding"),               // …, word ptr [rax]{1to32}
        (&[0x62, 0xf5, 0x6c, 0x28, 0x58, 0xcb], "not 512 bits wide"),                            // vaddph ymm1, ymm2, ymm3
        (&[0x62, 0xf5, 0x6c, 0x48, 0x58, 0x0d, 0x10, 0, 0, 0], "a RIP-relative operand"),        // [rip + 16]
        (&[0x62, 0xf5, 0x6c, 0x48, 0x5c, 0xcb], "not vaddph, vmulph or vfmadd231ph"),            // vsubph
        (&[0x0f, 0x0b], "not an EVEX instruction"),                                              // ud2
    ] {
        assert_eq!(decode(&code(bytes)), Err(why), "{bytes:02x?}");
    }
}

/// 32 f16 lanes: ordinary values in [-2, 2), subnormals, zeros of both signs, and values
/// whose products overflow to ±inf.
fn values(seed: u64) -> [u16; 32] {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    std::array::from_fn(|l| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let u = (s >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0;
        let x = match (l as u64 + seed) % 8 {
            0 => u * 1e-5,  // subnormal
            1 => u * 300.0, // products past 65504
            2 => 0.0,
            3 => -0.0,
            _ => u,
        };
        f16::from_f64(x).to_bits()
    })
}

/// The memory operand's buffer: `y` at byte `at`, other lanes 0x7bff (f16's max).
fn buffer(y: &[u16; 32], at: usize) -> [u16; 96] {
    let mut b = [0x7bff; 96];
    b[at / 2..at / 2 + 32].copy_from_slice(y);
    b
}

/// Runs `$insn` with zmm`$d` = z and zmm`$s1` = x (x wins where they are one register),
/// after `$pre` (which loads y from `{y}` where the third operand is a register), and
/// stores zmm`$d` at `{o}`; `$r = $v` sets named general registers.
macro_rules! form {
    ($x:expr, $y:expr, $z:expr, $o:expr, $d:literal, $s1:literal, $pre:literal, $insn:literal $(, $r:tt = $v:expr)*) => {
        std::arch::asm!(
            concat!("vmovdqu16 zmm", $d, ", zmmword ptr [{z}]"),
            concat!("vmovdqu16 zmm", $s1, ", zmmword ptr [{x}]"),
            $pre,
            $insn,
            concat!("vmovdqu16 zmmword ptr [{o}], zmm", $d),
            x = in(reg) $x, y = in(reg) $y, z = in(reg) $z, o = in(reg) $o,
            $(in($r) $v,)*
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            options(nostack),
        )
    };
}

/// Each form's instruction on x, y (a register or memory) and z; (name, op, result).
///
/// # Safety
/// The CPU has AVX512F and AVX512BW, and AVX512_FP16 or the emulation is on.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn forms(x: &[u16; 32], y: &[u16; 32], z: &[u16; 32]) -> Vec<(&'static str, Op, [u16; 32])> {
    let (x, yp, z) = (x.as_ptr(), y.as_ptr(), z.as_ptr());
    let (b0, b2, b16, b64) = (buffer(y, 0), buffer(y, 2), buffer(y, 16), buffer(y, 64));
    let (b0, b2, b16, b64) = (b0.as_ptr(), b2.as_ptr(), b16.as_ptr(), b64.as_ptr());
    let mut out = Vec::new();
    let mut o = [0u16; 32];
    let op = o.as_mut_ptr();
    // SAFETY: the pointers hold 32 lanes (buffers 96) and the CPU runs the instructions
    // (the caller's contract); every zmm register is declared clobbered.
    unsafe {
        form!(x, yp, z, op, 1, 2, "vmovdqu16 zmm3, zmmword ptr [{y}]", "vaddph zmm1, zmm2, zmm3");
        out.push(("vaddph zmm1, zmm2, zmm3", Op::Add, o));
        form!(x, yp, z, op, 17, 30, "vmovdqu16 zmm21, zmmword ptr [{y}]", "vmulph zmm17, zmm30, zmm21");
        out.push(("vmulph zmm17, zmm30, zmm21", Op::Mul, o));
        form!(x, yp, z, op, 9, 12, "vmovdqu16 zmm28, zmmword ptr [{y}]", "vfmadd231ph zmm9, zmm12, zmm28");
        out.push(("vfmadd231ph zmm9, zmm12, zmm28", Op::Fma231, o));
        form!(x, yp, z, op, 4, 5, "# y at {y} unused", "vaddph zmm4, zmm5, zmmword ptr [rax]", "rax" = b0);
        out.push(("vaddph zmm4, zmm5, [rax]", Op::Add, o));
        form!(x, yp, z, op, 20, 6, "# y at {y} unused", "vmulph zmm20, zmm6, zmmword ptr [rdx + 64]", "rdx" = b64);
        out.push(("vmulph zmm20, zmm6, [rdx + 64]", Op::Mul, o));
        form!(x, yp, z, op, 0, 31, "# y at {y} unused", "vfmadd231ph zmm0, zmm31, zmmword ptr [rsi + 2]", "rsi" = b2);
        out.push(("vfmadd231ph zmm0, zmm31, [rsi + 2]", Op::Fma231, o));
        form!(x, yp, z, op, 11, 13, "# y at {y} unused", "vaddph zmm11, zmm13, zmmword ptr [r13]", "r13" = b0);
        out.push(("vaddph zmm11, zmm13, [r13]", Op::Add, o));
        form!(x, yp, z, op, 26, 3, "# y at {y} unused", "vfmadd231ph zmm26, zmm3, zmmword ptr [r12 + 64]", "r12" = b64);
        out.push(("vfmadd231ph zmm26, zmm3, [r12 + 64]", Op::Fma231, o));
        form!(x, yp, z, op, 8, 16, "# y at {y} unused", "vmulph zmm8, zmm16, zmmword ptr [rcx + rdi*2 + 6]", "rcx" = b16, "rdi" = 5usize);
        out.push(("vmulph zmm8, zmm16, [rcx + rdi*2 + 6]", Op::Mul, o));
        form!(x, yp, z, op, 2, 2, "# y at {y} unused", "vaddph zmm2, zmm2, zmmword ptr [r10 + r9*8 - 64]", "r10" = b16, "r9" = 10usize);
        out.push(("vaddph zmm2, zmm2, [r10 + r9*8 - 64]", Op::Add, o));
    }
    out
}

#[test]
fn each_instruction_form_gives_the_correctly_rounded_lanes() {
    if !super::super::available() {
        eprintln!("skipped: this CPU has no AVX512_FP16 (the emulation runs this test in a child process)");
        return;
    }
    for seed in 1..40 {
        let (x, y, z) = (values(seed), values(seed + 100), values(seed + 200));
        // SAFETY: available() says the instructions run here.
        for (name, op, got) in unsafe { forms(&x, &y, &z) } {
            for l in 0..32 {
                let (a, b, c) = (f16::from_bits(x[l]), f16::from_bits(y[l]), f16::from_bits(z[l]));
                let want = lane(op, a, b, c).to_bits();
                assert_eq!(got[l], want, "{name}, lane {l}: x = {a:e}, y = {b:e}, z = {c:e}: {:e}, correctly rounded {:e}", f16::from_bits(got[l]), f16::from_bits(want));
            }
        }
    }
}

/// The tests of the native f16 kernels: each runs the kernels where [`available`] says so.
///
/// [`available`]: super::super::available
const NATIVE_TESTS: [&str; 6] = [
    "avx512fp16::emulation::tests::each_instruction_form_gives_the_correctly_rounded_lanes",
    "gemm::f16_avx512fp16::tests::the_native_tile_matches_the_portable_arithmetic",
    "gemm::tests::native_f16_accumulation_matches_the_portable_path",
    "hpl_mxp::refine::tests::f16_accumulation_factors_the_same_bits_on_every_path",
    "peak::fma::tests::counts_operations_per_instruction_for_what_the_cpu_has",
    "stencil::tests::f16_arithmetic_sweeps_round_every_operation_to_f16",
];

#[test]
fn the_native_f16_kernels_pass_their_tests_with_the_instructions_emulated() {
    if super::super::detected() {
        eprintln!("skipped: this CPU has AVX512_FP16, so the tests run the native kernels themselves");
        return;
    }
    if !can_emulate() {
        eprintln!("skipped: emulating AVX512_FP16 needs AVX512F and AVX512BW");
        return;
    }
    // A signal per instruction keeps both cores busy in the kernel for some seconds.
    let _alone = crate::CPU_TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe).args(NATIVE_TESTS).args(["--exact", "--nocapture"]).env(VAR, "1").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ok = format!("test result: ok. {} passed", NATIVE_TESTS.len());
    assert!(out.status.success() && stdout.contains(&ok), "the native kernels' tests with AVX512_FP16 emulated:\n{stdout}\n{stderr}");
    assert!(!stderr.contains("skipped"), "a test did not run the native kernels:\n{stderr}");
}
