//! The end-to-end tests: a REAL unprivileged libvirtd and REAL QEMU (TCG) whose emulator
//! simulates the AMD SEV firmware (the harness, tests/e2e/harness/), and QEMU driven by hand
//! over QMP. One test binary, so that scripts/test.sh can run them all a second time on
//! libvirt 11.3 + QEMU 10.0: `SEV_E2E_LIBVIRT=11 cargo test --test e2e`. One daemon serves
//! every test of the binary ([`harness::Host::shared`]).

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod e2e_libvirt;
mod e2e_qemu_igvm;
mod e2e_snp;
mod e2e_snp_agent;
mod qmp_sim;
