//! The `effcal` binary: everything lives in effcal-harness; this turns its result into
//! the process exit code.

fn main() {
    std::process::exit(effcal_harness::main());
}
