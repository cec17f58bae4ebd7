//! Public test vectors (../shared/vectors/VECTORS.json): every SEV and
//! SEV-ES launch digest, every LAUNCH_MEASURE blob, the secret packets, and
//! the sevctl VMSA pages. The expected values are the public suites' own.

use crate::common;
use common::sevctl::{self, Sevctl};
use common::Args;

use std::fs;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use sev_validate::core::keys::{Tek, Tik};
use sev_validate::core::measurement::{compute_measure, LaunchInfo, Measurement};
use sev_validate::core::secret::{self, SecretTable};
use sev_validate::core::vmsa::{self, VmsaConfig, VmsaForm};
use sev_validate::input;
use sev_validate::sev::launch::{self, Firmware, VmsaSource};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn load(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("VECTORS.json")).unwrap()).unwrap()
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Empty-file kernel/initrd in VECTORS.json mean /dev/null-like empty input.
fn input_path(dir: &Path, tmp: &Path, rel: &str) -> std::path::PathBuf {
    if rel.is_empty() {
        let p = tmp.join("empty");
        fs::write(&p, b"").unwrap();
        p
    } else {
        dir.join(rel)
    }
}

#[test]
fn sev_and_sev_es_launch_digests() {
    let Some(dir) = common::vectors_dir("sev_and_sev_es_launch_digests") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for v in load(&dir)["launch_digests"].as_array().unwrap() {
        let mode = str_field(v, "mode").unwrap();
        if !(mode == "sev" || mode.starts_with("seves")) {
            continue; // SNP digests are SHA-384 and belong to the SNP feature.
        }
        let fw = Firmware::load(&dir.join(str_field(v, "ovmf").unwrap())).unwrap();
        let kernel = match v.get("kernel").and_then(Value::as_str) {
            Some(k) => {
                let kp = input_path(&dir, tmp.path(), k);
                let ip = str_field(v, "initrd").map(|i| input_path(&dir, tmp.path(), i));
                fw.require_kernel_hash_area().unwrap();
                Some(input::kernel_hashes(&kp, ip.as_deref(), str_field(v, "append")).unwrap())
            }
            None => None,
        };
        let es = if mode.starts_with("seves") {
            let form = if str_field(v, "vmsa").is_some_and(|s| s.starts_with("INIT2")) {
                VmsaForm::Init2
            } else {
                VmsaForm::Legacy
            };
            let sig = u32::from_str_radix(
                str_field(v, "vcpu_sig").unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap();
            let src = VmsaSource::Built {
                config: VmsaConfig {
                    form,
                    cpu_signature: sig,
                    sev_features: 0,
                },
                ap_reset_addr: fw.require_sev_es_reset_addr().unwrap(),
            };
            Some((src, v["vcpus"].as_u64().unwrap() as u32))
        } else {
            None
        };
        let trace =
            launch::compute_ld(&fw, kernel.as_ref(), es.as_ref().map(|(s, n)| (s, *n))).unwrap();
        assert_eq!(
            hex::encode(trace.ld),
            str_field(v, "expected").unwrap(),
            "vector {v}"
        );
        checked += 1;
    }
    assert_eq!(
        checked, 10,
        "all SEV and SEV-ES digest vectors were checked"
    );
}

#[test]
fn launch_measure_blobs() {
    let Some(dir) = common::vectors_dir("launch_measure_blobs") else {
        return;
    };
    let mut checked = 0;
    for v in load(&dir)["sev_launch_measure"].as_array().unwrap() {
        let tik = match (str_field(v, "tik_file"), str_field(v, "tik_hex")) {
            (Some(f), _) => fs::read(dir.join(f)).unwrap(),
            (_, Some(h)) => hex::decode(h).unwrap(),
            _ => unreachable!(),
        };
        let tik = Tik::from_slice(&tik).unwrap();
        let info = LaunchInfo {
            api_major: v["api_major"].as_u64().unwrap() as u8,
            api_minor: v["api_minor"].as_u64().unwrap() as u8,
            build_id: v["build"].as_u64().unwrap() as u8,
            policy: v["policy"].as_u64().unwrap() as u32,
        };
        if let Some(expected) = str_field(v, "expected_measure_hex") {
            let ld: [u8; 32] = hex::decode(str_field(v, "ld_hex").unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let nonce: [u8; 16] = hex::decode(str_field(v, "mnonce_hex").unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            assert_eq!(
                hex::encode(compute_measure(&tik, &info, &ld, &nonce)),
                expected
            );
            checked += 1;
            continue;
        }
        let expected =
            Measurement::from_base64(str_field(v, "expected_blob_b64").unwrap()).unwrap();
        let nonce = match str_field(v, "nonce_b64") {
            Some(n) => b64(n).try_into().unwrap(),
            None => expected.mnonce,
        };
        let ld: [u8; 32] = if let Some(l) = str_field(v, "launch_digest_b64") {
            b64(l).try_into().unwrap()
        } else {
            let fw = Firmware::load(&dir.join(str_field(v, "firmware").unwrap())).unwrap();
            let kernel = str_field(v, "kernel").map(|k| {
                input::kernel_hashes(
                    &dir.join(k),
                    str_field(v, "initrd").map(|i| dir.join(i)).as_deref(),
                    str_field(v, "cmdline"),
                )
                .unwrap()
            });
            let es = str_field(v, "vmsa_cpu0").map(|p0| {
                let src = VmsaSource::Pages {
                    bsp: launch::read_vmsa("vmsa0", &dir.join(p0)).unwrap(),
                    ap: Some(
                        launch::read_vmsa("vmsa1", &dir.join(str_field(v, "vmsa_cpu1").unwrap()))
                            .unwrap(),
                    ),
                };
                (src, v["num_cpus"].as_u64().unwrap() as u32)
            });
            let t = launch::compute_ld(&fw, kernel.as_ref(), es.as_ref().map(|(s, n)| (s, *n)))
                .unwrap();
            if let Some(i) = str_field(v, "intermediate_ld_hex") {
                assert_eq!(hex::encode(t.ld), i);
            }
            t.ld
        };
        let m = Measurement {
            measure: compute_measure(&tik, &info, &ld, &nonce),
            mnonce: nonce,
        };
        assert_eq!(m, expected, "vector {v}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn launch_secret_packets_byte_for_byte() {
    let Some(dir) = common::vectors_dir("launch_secret_packets_byte_for_byte") else {
        return;
    };
    for v in load(&dir)["launch_secret"].as_array().unwrap() {
        let tik = Tik::from_slice(&fs::read(dir.join(str_field(v, "tik_file").unwrap())).unwrap())
            .unwrap();
        let tek = Tek::from_slice(&fs::read(dir.join(str_field(v, "tek_file").unwrap())).unwrap())
            .unwrap();
        let mut table = SecretTable::new();
        for s in v["secrets"].as_array().unwrap() {
            let guid = uuid::Uuid::parse_str(s[0].as_str().unwrap()).unwrap();
            let data = fs::read(dir.join(s[1].as_str().unwrap())).unwrap();
            table.add(guid, zeroize::Zeroizing::new(data)).unwrap();
        }
        let plain = table.build().unwrap();
        assert_eq!(hex::encode(&plain[..]), str_field(v, "table_hex").unwrap());
        let m = Measurement::from_base64(str_field(v, "launch_measure_blob_b64").unwrap()).unwrap();
        let iv: [u8; 16] = b64(str_field(v, "iv_b64").unwrap()).try_into().unwrap();
        let p = secret::package(&tik, &tek, &m.measure, &plain, iv).unwrap();
        assert_eq!(
            p.header.to_vec(),
            b64(str_field(v, "expected_header_b64").unwrap())
        );
        assert_eq!(
            p.payload,
            b64(str_field(v, "expected_payload_b64").unwrap())
        );
    }
}

#[test]
fn sevctl_legacy_vmsa_pages() {
    let Some(dir) = common::vectors_dir("sevctl_legacy_vmsa_pages") else {
        return;
    };
    // EPYC-Milan, AP reset address from the sevctl trimmed OVMF.
    let fw = Firmware::load(
        &dir.join("sevctl/OVMF.amdsev.fd_trimmed_edk2-ovmf-20220126gitbb1bba3d77-4.el9"),
    )
    .unwrap();
    let cfg = VmsaConfig {
        form: VmsaForm::Legacy,
        cpu_signature: 0xA00F11,
        sev_features: 0,
    };
    let bsp = vmsa::build(&cfg, vmsa::BSP_RESET_EIP);
    let ap = vmsa::build(&cfg, fw.require_sev_es_reset_addr().unwrap());
    assert_eq!(
        &bsp[..],
        &fs::read(dir.join("sevctl/vmsa0.bin")).unwrap()[..]
    );
    assert_eq!(
        &ap[..],
        &fs::read(dir.join("sevctl/vmsa1.bin")).unwrap()[..]
    );
}

/// The same vectors through the command line, as a user would run it.
#[test]
fn cli_accepts_sevctl_measurements() {
    let Some(dir) = common::vectors_dir("cli_accepts_sevctl_measurements") else {
        return;
    };
    let v = Sevctl::new(&dir);
    let sev = Args::of(&["-m", sevctl::SEV_KERNEL_MEASUREMENT])
        .args(v.sev_kernel())
        .vec();
    let (code, out, err) = common::run(&sev);
    assert_eq!((code, out.as_str()), (0, "OK: Looks good to me\n"), "{err}");
    // The same 48 bytes as 96 hex digits.
    let hex_m = hex::encode(b64(sevctl::SEV_KERNEL_MEASUREMENT));
    let (code, out, err) = common::run(Args::of(&["-m", &hex_m]).args(v.sev_kernel()));
    assert_eq!((code, out.as_str()), (0, "OK: Looks good to me\n"), "{err}");
    // The same with one character of the cmdline changed is rejected.
    let mut bad = sev.to_vec();
    common::set(&mut bad, "--cmdline", "foo bar baz fake kernel=cmdlinE");
    assert_eq!(common::run(bad).0, 1);

    let es = |extra: &[&str]| {
        let a = Args::of(&["-m", sevctl::SEV_ES_MEASUREMENT]).args(v.sev_es());
        common::run(a.args(extra)).0
    };
    let (v0, v1) = (v.file("vmsa0.bin"), v.file("vmsa1.bin"));
    assert_eq!(es(&["-n", "4", "-0", &v0, "-1", &v1]), 0);
    assert_eq!(es(&[&["-n", "4"][..], &common::MILAN].concat()), 0);
    assert_eq!(es(&["-n", "3", "-0", &v0, "-1", &v1]), 1);
    let stepping_0 = [&["-n", "4"][..], &common::MILAN[..5], &["0"]].concat();
    assert_eq!(es(&stepping_0), 1);
}

/// A measurement pasted as `virsh domlaunchsecinfo` prints it (libvirt's
/// virsh formats each field as "%-15s: %s", so `sev-measurement: <base64>`)
/// validates like the bare value; a different field or several lines are
/// refused with what to remove.
#[test]
fn cli_accepts_the_virsh_measurement_line() {
    let Some(dir) = common::vectors_dir("cli_accepts_the_virsh_measurement_line") else {
        return;
    };
    let v = Sevctl::new(&dir);
    let b64 = sevctl::SEV_KERNEL_MEASUREMENT;
    let run = |m: &str| common::run(Args::of(&["-m", m]).args(v.sev_kernel()));
    for pasted in [
        format!("sev-measurement: {b64}"),
        format!("sev-measurement: {b64}\n"),
        format!("  sev-measurement : {b64}  "),
    ] {
        let (code, out, err) = run(&pasted);
        assert_eq!(
            (code, out.as_str()),
            (0, "OK: Looks good to me\n"),
            "{pasted:?}: {err}"
        );
    }
    let (code, _, err) = run(&format!("sev-policy     : {b64}"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("remove 'sev-policy:'"), "{err}");
    let whole = format!(
        "sev-measurement: {b64}\nsev-api-major  : 1\nsev-api-minor  : 40\nsev-build-id   : 40\nsev-policy     : 3\n"
    );
    let (code, _, err) = run(&whole);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("give only the base64 after 'sev-measurement:'"),
        "{err}"
    );
    assert!(!err.contains("Invalid symbol"), "{err}");
}
