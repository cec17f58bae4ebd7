//! `--insecure` lets an SEV-SNP domain that boots a kernel directly without
//! kernelHashes='yes' pass its checks; with no --kernel from the owner, the
//! run warns that nothing about the kernel was checked. (The SEV case is in
//! xml_checks.rs and libvirt_test_driver.rs; Debian 12's libvirt test driver
//! knows no sev-snp domain, so the SNP run is driven here on the domain as
//! libvirt gives it.)

use crate::common::skip::skip_or_fail;

use std::path::Path;

use sev_validate::snp::domain::{decode, SnpContext};
use sev_validate::ExitCode;

// The fixture loader and the check run of the SNP domain checks' tests.
use crate::snp_xml_checks::{base, fixture, run_checks, MILAN};

/// `--insecure` lets a direct kernel boot without kernelHashes='yes' pass;
/// with no --kernel from the owner, the run warns, naming the fix.
#[test]
fn insecure_unmeasured_kernel_is_warned_about() {
    use sev_validate::snp::domain::unmeasured_kernel_warning;
    let insecure = SnpContext {
        secure: false,
        ..base()
    };
    let d = fixture("snp-unmeasured-direct-boot.trips.xml");
    let s = run_checks(&d, &insecure).expect("passes with --insecure");
    let w = unmeasured_kernel_warning(&d, &s, &insecure).expect("a warning");
    assert!(
        w.contains("kernelHashes='yes'") && w.contains("--kernel"),
        "{w}"
    );
    assert_eq!(unmeasured_kernel_warning(&d, &s, &base()), None);
    let owner_kernel = SnpContext {
        owner_kernel: true,
        ..insecure.clone()
    };
    assert_eq!(unmeasured_kernel_warning(&d, &s, &owner_kernel), None);
    let d = fixture("snp-unmeasured-direct-boot.passes.xml");
    let s = decode(&d).unwrap();
    assert!(s.kernel_hashes, "the passing fixture measures the kernel");
    assert_eq!(unmeasured_kernel_warning(&d, &s, &insecure), None);
}

/// The whole SNP run on such a domain (as libvirt gives it; Debian 12's
/// libvirt test driver knows no sev-snp) passes under --insecure with no
/// --kernel, with the warning in the run's record, which the report and
/// stderr show.
#[test]
fn insecure_unmeasured_kernel_run_passes_with_the_warning() {
    use sev_validate::snp::run::{run, SnpOwner, SnpRun};
    use sev_validate::source::SnpHostReport;
    let ovmf = Path::new("/usr/share/ovmf/OVMF.fd");
    if !ovmf.is_file() {
        skip_or_fail("insecure_unmeasured_kernel_run", "Debian's ovmf is needed");
        return;
    }
    let owner = SnpOwner {
        firmware: Some(ovmf.to_path_buf()),
        igvm: None,
        kernel: None,
        initrd: None,
        cmdline: None,
        num_cpus: Some(2),
        vcpu_signature: Some(MILAN),
        sev_features: None,
        vmsa_form: None,
        policy: None,
        insecure: true,
        ignore_config: false,
        expectations: Default::default(),
        report: None,
        endorsement: Default::default(),
        nonce: None,
        seal: None,
        agent: None,
    };
    let host = SnpHostReport {
        domain: Some(fixture("snp-unmeasured-direct-boot.trips.xml")),
        ..SnpHostReport::default()
    };
    let mut record = SnpRun::default();
    run(&owner, host, &mut record, None).expect("passes with --insecure");
    assert!(
        record
            .warnings
            .iter()
            .any(|w| w.contains("kernelHashes='yes'") && w.contains("--kernel")),
        "{:?}",
        record.warnings
    );
    // Without --insecure it is refused (exit 3), as before.
    let secure = SnpOwner {
        insecure: false,
        ..owner
    };
    let host = SnpHostReport {
        domain: Some(fixture("snp-unmeasured-direct-boot.trips.xml")),
        ..SnpHostReport::default()
    };
    let e = run(&secure, host, &mut SnpRun::default(), None).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::InsecureUsage, "{e}");
}
