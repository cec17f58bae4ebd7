//! Fuzz targets for virt-qemu-sev-validate; see README.md. The target bodies
//! live in targets.rs, which tests/it/fuzz_regressions.rs also includes.

mod targets;

pub use targets::*;
