//! The integration tests that need no libvirt daemon, in one test binary: the crate is
//! linked once for all of them. One module a former test file; run one with
//! `cargo test --test it MODULE::` (e.g. `cargo test --test it cli_usage::`). The end-to-end
//! tests on a real libvirtd and QEMU are the `e2e` binary (tests/e2e/main.rs).

#[path = "../common/mod.rs"]
mod common;

mod bounded_reads;
mod cli_usage;
mod differential_python;
mod discoverability;
mod executables;
mod explainer;
mod fuzz_regressions;
mod guest_agent_usage;
mod guest_report;
mod igvm_build;
mod igvm_differential;
mod igvm_explainer;
mod igvm_hostile;
mod igvm_qmp;
mod igvm_validate;
mod igvm_variants;
mod igvm_vectors;
mod json_output;
mod kds;
mod libvirt_test_driver;
mod limits;
mod man_page;
mod package;
mod proptest_core;
mod qmp;
mod qmp_igvm;
mod schemas;
mod scripts;
mod secrets;
mod sftp_fingerprint;
mod snp_attestation;
mod snp_differential;
mod snp_evidence;
mod snp_explainer;
mod snp_insecure_kernel;
mod snp_measurement_required;
mod snp_qmp;
mod snp_revocation;
mod snp_secrets;
mod snp_sim;
mod snp_svsm;
mod snp_validate_cli;
mod snp_validate_sim;
mod snp_vectors;
mod snp_xml_checks;
mod special_files;
mod validate_stage;
mod vectors;
mod version;
mod xml_checks;
