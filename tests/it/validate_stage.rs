//! The validation stage on its own: expected and reported launches built by
//! hand from the public sevctl vectors (../shared/vectors/VECTORS.json),
//! with no file, socket or command line between them and the verdict. The
//! expected MEASUREs are sevctl's, not ours.

use crate::common;

use std::fs;
use std::path::Path;

use serde_json::Value;
use sev_validate::core::kernel_hashes::{self, KernelHashes};
use sev_validate::core::keys::{Tek, Tik};
use sev_validate::core::measurement::{LaunchDigest, LaunchInfo, Measurement};
use sev_validate::core::ovmf::{FooterTable, GuestArea, FOOTER_TAIL_LEN};
use sev_validate::core::vmsa::VMSA_LEN;
use sev_validate::sev::launch::{Firmware, VmsaSource};
use sev_validate::sev::policy::Requirements;
use sev_validate::sev::resolve::{
    ExpectedKernel, ExpectedLaunch, ExpectedVmsa, Keys, Origin, Sourced,
};
use sev_validate::sev::validate::{validate, Verdict};
use sev_validate::source::ReportedLaunch;
use sha2::{Digest, Sha256};

/// A firmware image in memory: its launch digest state and footer table.
fn firmware(bytes: &[u8]) -> Firmware {
    let tail = &bytes[bytes.len().saturating_sub(FOOTER_TAIL_LEN)..];
    Firmware {
        digest_after_firmware: LaunchDigest::from_firmware(bytes).unwrap(),
        footer: FooterTable::parse(tail).unwrap(),
        len: bytes.len() as u64,
    }
}

fn page(bytes: Vec<u8>) -> Box<[u8; VMSA_LEN]> {
    Box::new(<[u8; VMSA_LEN]>::try_from(bytes).unwrap())
}

/// The expected launch of one vector, built field by field.
fn expected(dir: &Path, v: &Value, tik: Tik) -> ExpectedLaunch {
    let s = |k: &str| v[k].as_str();
    let read = |k: &str| fs::read(dir.join(s(k).unwrap())).unwrap();
    let kernel = s("kernel").map(|_| ExpectedKernel {
        hashes: KernelHashes {
            kernel: Sha256::digest(read("kernel")).into(),
            initrd: Sha256::digest(read("initrd")).into(),
            cmdline: kernel_hashes::cmdline_digest(s("cmdline").unwrap().as_bytes()),
        },
        kernel: Sourced::owner("vmlinuz".into()),
        initrd: Some(Sourced::owner("initrd".into())),
        cmdline: Some(Sourced::owner(s("cmdline").unwrap().to_string())),
        area: GuestArea { base: 0, size: 0 },
    });
    let vmsa = v["num_cpus"].as_u64().map(|n| ExpectedVmsa {
        source: VmsaSource::Pages {
            bsp: page(read("vmsa_cpu0")),
            ap: Some(page(read("vmsa_cpu1"))),
        },
        num_cpus: Sourced::owner(n as u32),
        origin: Origin::Owner,
    });
    ExpectedLaunch {
        firmware: firmware(&read("firmware")),
        firmware_path: Sourced::owner("OVMF.fd".into()),
        kernel,
        vmsa,
        keys: Keys {
            tik,
            tek: Tek::from_slice(&[0x5a; 16]).unwrap(),
            from_tk_file: false,
        },
        host_signature: None,
        other_policies: vec![],
        unused_vmsa: None,
    }
}

fn reported(v: &Value) -> ReportedLaunch {
    let n = |k: &str| v[k].as_u64().unwrap();
    ReportedLaunch {
        measurement: Measurement::from_base64(v["expected_blob_b64"].as_str().unwrap()).unwrap(),
        info: LaunchInfo {
            api_major: n("api_major") as u8,
            api_minor: n("api_minor") as u8,
            build_id: n("build") as u8,
            policy: n("policy") as u32,
        },
    }
}

#[test]
fn sevctl_launches_validate_and_tampered_ones_do_not() {
    let Some(dir) = common::vectors_dir("sevctl_launches_validate_and_tampered_ones_do_not") else {
        return;
    };
    let all: Value = serde_json::from_slice(&fs::read(dir.join("VECTORS.json")).unwrap()).unwrap();
    let mut checked = 0;
    for v in all["sev_launch_measure"].as_array().unwrap() {
        if v["firmware"].as_str().is_none() {
            continue;
        }
        let tik = fs::read(dir.join(v["tik_file"].as_str().unwrap())).unwrap();
        let tik = Tik::from_slice(&tik).unwrap();
        let e = expected(&dir, v, tik);
        let r = reported(v);
        let none = Requirements::default();
        let o = validate(&e, &r, &none).unwrap();
        assert_eq!(o.verdict, Verdict::Validated, "{}", v["source"]);
        assert!(o.error().is_none());

        // The same launch with another policy was not what the firmware measured.
        let mut other = r;
        other.info.policy ^= 1;
        let o = validate(&e, &other, &none).unwrap();
        assert_eq!(o.verdict, Verdict::Mismatch);
        assert!(o.explanation.is_some());

        // A match that misses the owner's minimum API is still refused.
        let strict = Requirements {
            min_api: Some((2, 0)),
            ..Requirements::default()
        };
        let o = validate(&e, &r, &strict).unwrap();
        assert_eq!(o.verdict, Verdict::RequirementFailed);
        assert!(o.error().unwrap().to_string().contains("2.0"));
        checked += 1;
    }
    assert_eq!(checked, 3, "the vectors with a firmware image");
}
