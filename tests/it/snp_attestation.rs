//! SEV-SNP attestation against the nine real report sets in
//! ../shared/snp-vectors: decoding equals EXPECTED.json (written by an
//! independent Python `cryptography` script), each set validates with the
//! options it needs, and fails with the right check named when one signed
//! bit flips, with another set's VCEK, another product's roots, a changed
//! TCB or chip ID, after expiry, with DEBUG or provisional firmware. The
//! `openssl` command line agrees with every signature and chain verdict.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sev_validate::core::hex;
use sev_validate::core::snp_cert::{self, CaRole, Certificate, TrustAnchors};
use sev_validate::core::snp_report::{self, AttestationReport, Product, TcbVersion};
use sev_validate::snp::validate::{ChainCache, Endorsement, Expectations, Status, Validator};

fn snp_dir(test: &str) -> Option<PathBuf> {
    common::snp_vectors_dir(test, "SEV_SNP_VECTORS_DIR")
}

fn expected(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("EXPECTED.json")).unwrap()).unwrap()
}

/// 2026-12-01T00:00:00Z: every VCEK in the sets is valid then.
const NOW: u64 = 1_796_083_200;
/// 2025-06-01T00:00:00Z: the VLEK (valid 2024-12-10 .. 2025-12-10) is valid then.
const VLEK_NOW: u64 = 1_748_736_000;

struct Set {
    name: String,
    exp: Value,
    report_bytes: Vec<u8>,
    report: AttestationReport,
    #[allow(dead_code)]
    vek_path: PathBuf,
    vek: Certificate,
    /// The AS(V)K and ARK files the set names: (ask, ark) paths.
    roots: Vec<PathBuf>,
}

impl Set {
    fn load(dir: &Path, name: &str, exp: &Value) -> Set {
        let files = &exp["files"];
        let report_bytes = fs::read(dir.join(files["report"].as_str().unwrap())).unwrap();
        let report = snp_report::parse_input(&report_bytes).unwrap().report;
        let vek_path = dir.join(files["vek"].as_str().unwrap());
        let vek = Certificate::from_der_or_pem(&fs::read(&vek_path).unwrap()).unwrap();
        let roots = match &files["roots"] {
            Value::String(s) => vec![dir.join(s)],
            Value::Array(a) => a.iter().map(|s| dir.join(s.as_str().unwrap())).collect(),
            _ => panic!("roots"),
        };
        Set {
            name: name.into(),
            exp: exp.clone(),
            report_bytes,
            report,
            vek_path,
            vek,
            roots,
        }
    }

    fn product(&self) -> Product {
        snp_report::resolve_product(&self.report, self.vek.amd.product_name.as_deref(), None)
            .unwrap()
            .0
    }

    fn is_vlek(&self) -> bool {
        self.name.contains("vlek")
    }

    /// The supplied AS(V)K and ARK, from the set's own files.
    fn supplied(&self) -> (Certificate, Certificate) {
        let mut ders = Vec::new();
        for p in &self.roots {
            ders.extend(snp_cert::pem_certificates(&fs::read(p).unwrap()).unwrap());
        }
        assert_eq!(ders.len(), 2, "{}", self.name);
        (
            Certificate::from_der(&ders[0]).unwrap(),
            Certificate::from_der(&ders[1]).unwrap(),
        )
    }

    /// The options this set needs to validate.
    fn expectations(&self) -> Expectations {
        let mut e = Expectations {
            report_data: Some(unhex(self.exp["report_data"].as_str().unwrap())),
            measurement: Some(unhex(self.exp["measurement"].as_str().unwrap())),
            ..Default::default()
        };
        if self.exp["checks"]["committed_equals_current"] == Value::Bool(false) {
            e.allow_provisional_firmware = true;
        }
        if self.exp["checks"]["debug_policy_bit19"] == Value::Bool(true) {
            e.allow_debug = true;
        }
        e
    }

    fn now(&self) -> u64 {
        if self.is_vlek() {
            VLEK_NOW
        } else {
            NOW
        }
    }

    fn endorsement(&self) -> Endorsement {
        let (ask, ark) = self.supplied();
        Endorsement {
            vek: self.vek.clone(),
            ask: Some(ask),
            ark: Some(ark),
        }
    }

    fn run(
        &self,
        report: &AttestationReport,
        e: &Endorsement,
        x: &Expectations,
        now: u64,
    ) -> Vec<(String, Status, String)> {
        Validator::new(TrustAnchors::builtin(), now)
            .validate(report, self.product(), e, x)
            .checks
            .into_iter()
            .map(|c| (c.name.to_string(), c.status, c.message))
            .collect()
    }
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn sets(test: &str) -> Vec<Set> {
    let Some(dir) = snp_dir(test) else {
        return Vec::new();
    };
    let exp = expected(&dir);
    exp.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| Set::load(&dir, k, v))
        .collect()
}

fn failed(checks: &[(String, Status, String)]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| c.1 == Status::Fail)
        .map(|c| c.0.as_str())
        .collect()
}

fn tcb_json(t: &TcbVersion) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("bl".into(), t.bootloader.into());
    m.insert("tee".into(), t.tee.into());
    m.insert("snp".into(), t.snp.into());
    m.insert("ucode".into(), t.microcode.into());
    if let Some(f) = t.fmc {
        m.insert("fmc".into(), f.into());
    }
    m.insert("raw".into(), format!("{:#018x}", t.raw).into());
    Value::Object(m)
}

#[test]
fn decoding_equals_expected() {
    let all = sets("decoding_equals_expected");
    for s in &all {
        let (r, e, p) = (&s.report, &s.exp, s.product());
        let n = &s.name;
        assert_eq!(Value::from(r.version), e["version"], "{n}");
        assert_eq!(p.name(), e["product"], "{n}");
        assert_eq!(Value::from(r.guest_svn), e["guest_svn"], "{n}");
        assert_eq!(format!("{:#x}", r.policy.0), e["policy"], "{n}");
        assert_eq!(Value::from(r.vmpl), e["vmpl"], "{n}");
        assert_eq!(Value::from(r.signature_algo), e["sig_algo"], "{n}");
        assert_eq!(format!("{:#x}", r.platform_info), e["platform_info"], "{n}");
        assert_eq!(
            Value::from(r.key_info.author_key_en as u8),
            e["key_info"]["author_key_en"]
        );
        assert_eq!(
            Value::from(r.key_info.mask_chip_key as u8),
            e["key_info"]["mask_chip_key"]
        );
        assert_eq!(
            r.key_info.signing_key.name(),
            e["key_info"]["signing_key"],
            "{n}"
        );
        let cpuid = r
            .cpuid
            .map(|(a, b, c)| serde_json::json!([a, b, c]))
            .unwrap_or(Value::Null);
        assert_eq!(cpuid, e["cpuid_fam_mod_step"], "{n}");
        let l = p.tcb_layout();
        // EXPECTED writes 16 hex digits only where the value needs them.
        let norm = |v: &Value| {
            let mut v = v.clone();
            let raw = u64::from_str_radix(v["raw"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap();
            v["raw"] = format!("{raw:#018x}").into();
            v
        };
        for (field, raw) in [
            ("current_tcb", r.current_tcb),
            ("reported_tcb", r.reported_tcb),
            ("committed_tcb", r.committed_tcb),
            ("launch_tcb", r.launch_tcb),
        ] {
            assert_eq!(
                tcb_json(&TcbVersion::decode(raw, l)),
                norm(&e[field]),
                "{n} {field}"
            );
        }
        assert_eq!(r.current_version.to_string(), e["current_version"], "{n}");
        assert_eq!(
            r.committed_version.to_string(),
            e["committed_version"],
            "{n}"
        );
        assert_eq!(
            format!("{:#x}", r.launch_mit_vector.unwrap_or(0)),
            e["launch_mit_vector"]
        );
        assert_eq!(
            format!("{:#x}", r.current_mit_vector.unwrap_or(0)),
            e["current_mit_vector"]
        );
        for (field, v) in [
            ("family_id", &r.family_id[..]),
            ("image_id", &r.image_id[..]),
            ("report_data", &r.report_data[..]),
            ("measurement", &r.measurement[..]),
            ("host_data", &r.host_data[..]),
            ("id_key_digest", &r.id_key_digest[..]),
            ("author_key_digest", &r.author_key_digest[..]),
            ("report_id", &r.report_id[..]),
            ("report_id_ma", &r.report_id_ma[..]),
            ("chip_id", &r.chip_id[..]),
        ] {
            assert_eq!(hex(v), e[field], "{n} {field}");
        }
        // The VEK.
        let (v, ev) = (&s.vek, &e["vek"]);
        assert_eq!(v.subject.cn(), ev["subject_cn"], "{n}");
        assert_eq!(v.issuer.cn(), ev["issuer_cn"], "{n}");
        assert_eq!(Value::from(v.serial_u64().unwrap()), ev["serial"], "{n}");
        assert_eq!(hex(&v.sha256), ev["sha256"], "{n}");
        let t = |s: &Value| {
            humantime::parse_rfc3339(&s.as_str().unwrap().replace("+00:00", "Z"))
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(v.not_before, t(&ev["not_before"]), "{n}");
        assert_eq!(v.not_after, t(&ev["not_after"]), "{n}");
        let x = &ev["extensions"];
        let a = &v.amd;
        assert_eq!(
            a.struct_version.map(Value::from).unwrap_or(Value::Null),
            x["structVersion"]
        );
        assert_eq!(
            a.product_name
                .as_deref()
                .map(Value::from)
                .unwrap_or(Value::Null),
            x["productName"]
        );
        for (k, got) in [
            ("blSPL", a.bl_spl),
            ("teeSPL", a.tee_spl),
            ("snpSPL", a.snp_spl),
            ("ucodeSPL", a.ucode_spl),
            ("fmcSPL", a.fmc_spl),
        ] {
            assert_eq!(got.map(Value::from).unwrap_or(Value::Null), x[k], "{n} {k}");
        }
        for (i, val) in &a.reserved_spl {
            assert_eq!(Value::from(*val), x[format!("spl3.{i}")], "{n}");
        }
        assert_eq!(
            a.hwid
                .as_deref()
                .map(|h| Value::from(hex(h)))
                .unwrap_or(Value::Null),
            x["hwid"]
        );
        assert_eq!(
            a.csp_id.as_deref().map(Value::from).unwrap_or(Value::Null),
            x["cspId"]
        );
        // The KDS URL, where the set has one (a VLEK has none).
        match snp_report::kds_vcek_url(snp_report::KDS_BASE, p, r) {
            Ok(u) => assert_eq!(u, e["kds_vcek_url"], "{n}"),
            Err(_) => assert!(e.get("kds_vcek_url").is_none(), "{n}"),
        }
        // The checks EXPECTED records, through the validation stage.
        let out = s.run(r, &s.endorsement(), &s.expectations(), s.now());
        let st = |name: &str| out.iter().find(|c| c.0 == name).unwrap().1;
        let want = |k: &str| e["checks"][k].as_bool();
        for (k, check) in [
            ("report_signature_ok", "signature"),
            ("vek_signed_by_ask", "chain.vek_signed_by_ask"),
            ("ask_signed_by_ark", "chain.ask_signed_by_ark"),
            ("ark_self_signed", "chain.ark_self_signed"),
            ("reported_tcb_equals_vek_tcb", "binding.reported_tcb"),
            ("chip_id_matches_hwid", "binding.chip_id"),
            ("reserved_zero", "format.reserved_zero"),
        ] {
            if let Some(w) = want(k) {
                assert_eq!(st(check) == Status::Pass, w, "{n} {check}");
            }
        }
    }
    if !all.is_empty() {
        assert_eq!(all.len(), 9);
    }
}

#[test]
fn each_set_validates_with_its_options() {
    let cache = ChainCache::default();
    for s in sets("each_set_validates_with_its_options") {
        let v = Validator::new(TrustAnchors::builtin(), s.now()).with_cache(&cache);
        let o = v.validate(&s.report, s.product(), &s.endorsement(), &s.expectations());
        assert!(
            o.passed(),
            "{}: {:?}",
            s.name,
            o.failures().collect::<Vec<_>>()
        );
        // Without the supplied roots too (built-in anchors only).
        let bare = Endorsement {
            vek: s.vek.clone(),
            ask: None,
            ark: None,
        };
        let o = v.validate(&s.report, s.product(), &bare, &s.expectations());
        assert!(o.passed(), "{}", s.name);
        assert_eq!(o.get("chain.supplied_roots").unwrap().status, Status::Skip);
    }
}

#[test]
fn one_flipped_signed_bit_fails_the_signature() {
    for s in sets("one_flipped_signed_bit_fails_the_signature") {
        // Bits in fields no other check reads, so only the signature fails.
        for (byte, bit) in [(0x90usize, 0u8), (0xBF, 7), (0x140, 3), (0x29F, 7)] {
            let mut b = s.report_bytes.clone();
            b[byte] ^= 1 << bit;
            let r = AttestationReport::parse(&b).unwrap();
            let mut x = s.expectations();
            x.measurement = None;
            x.waive_measurement = true;
            let out = s.run(&r, &s.endorsement(), &x, s.now());
            let f = failed(&out);
            if byte == 0x29F {
                // Reserved on every version: the format check names it too.
                assert_eq!(
                    f,
                    ["format.reserved_zero", "signature"],
                    "{} {byte:#x}",
                    s.name
                );
            } else {
                assert_eq!(f, ["signature"], "{} {byte:#x}", s.name);
            }
        }
    }
}

#[test]
fn another_sets_vcek_fails() {
    let all = sets("another_sets_vcek_fails");
    for s in &all {
        for other in &all {
            if other.name == s.name || other.vek.der == s.vek.der {
                continue;
            }
            let e = Endorsement {
                vek: other.vek.clone(),
                ask: None,
                ark: None,
            };
            let out = s.run(&s.report, &e, &s.expectations(), s.now());
            let f = failed(&out);
            assert!(
                f.contains(&"signature"),
                "{} with {}'s VEK: {f:?}",
                s.name,
                other.name
            );
            if other.product() != s.product() || other.is_vlek() != s.is_vlek() {
                assert!(
                    f.contains(&"chain.vek_signed_by_ask"),
                    "{} with {}: {f:?}",
                    s.name,
                    other.name
                );
            }
        }
    }
}

#[test]
fn another_products_roots_fail() {
    let all = sets("another_products_roots_fail");
    let b = TrustAnchors::builtin();
    for s in &all {
        let p = s.product();
        let role = if s.is_vlek() {
            CaRole::Asvk
        } else {
            CaRole::Ask
        };
        for q in Product::ALL.into_iter().filter(|&q| q != p) {
            let (ask, ark) = s.supplied();
            let e = Endorsement {
                vek: s.vek.clone(),
                ask: Some(b.get(q, role).unwrap().clone()),
                ark: Some(ark),
            };
            let f = failed(&s.run(&s.report, &e, &s.expectations(), s.now()))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
            assert_eq!(f, ["chain.supplied_roots"], "{} with the {q} ASK", s.name);
            let e = Endorsement {
                vek: s.vek.clone(),
                ask: Some(ask),
                ark: Some(b.get(q, CaRole::Ark).unwrap().clone()),
            };
            let f = failed(&s.run(&s.report, &e, &s.expectations(), s.now()))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
            assert_eq!(f, ["chain.supplied_roots"], "{} with the {q} ARK", s.name);
            // Anchors that are another product's chain (relabelled by the
            // owner): the chain signatures themselves fail.
            let pem = |c: &Certificate| c.der.clone();
            let wrong = TrustAnchors::from_files(&[pem(b.get(q, CaRole::Ark).unwrap())]).unwrap();
            let o = Validator::new(&wrong, s.now()).validate(
                &s.report,
                p,
                &s.endorsement(),
                &s.expectations(),
            );
            assert!(
                o.failures()
                    .any(|c| c.name == "chain.ark_self_signed"
                        || c.name == "chain.ask_signed_by_ark"),
                "{}",
                s.name
            );
        }
    }
}

#[test]
fn changed_tcb_or_chip_id_fails_the_binding() {
    for s in sets("changed_tcb_or_chip_id_fails_the_binding") {
        // A VEK for another TCB: the report says one thing, the VEK another.
        // Re-signing is impossible, so the report's REPORTED_TCB is changed
        // and the signature check fails as well.
        let mut b = s.report_bytes.clone();
        b[0x180 + 7] = b[0x180 + 7].wrapping_add(1); // microcode, both layouts
        let r = AttestationReport::parse(&b).unwrap();
        let f = failed(&s.run(&r, &s.endorsement(), &s.expectations(), s.now()))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        assert!(
            f.contains(&"binding.reported_tcb".to_string()),
            "{}: {f:?}",
            s.name
        );
        assert!(f.contains(&"signature".to_string()));
        if !s.is_vlek() {
            let mut b = s.report_bytes.clone();
            b[0x1A0] ^= 0x01;
            let r = AttestationReport::parse(&b).unwrap();
            let f = failed(&s.run(&r, &s.endorsement(), &s.expectations(), s.now()))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
            assert_eq!(f, ["signature", "binding.chip_id"], "{}", s.name);
        }
    }
}

#[test]
fn expiry_debug_and_provisional_firmware() {
    for s in sets("expiry_debug_and_provisional_firmware") {
        let after = s.vek.not_after + 1;
        let f = failed(&s.run(&s.report, &s.endorsement(), &s.expectations(), after))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        assert_eq!(f, ["chain.validity"], "{}", s.name);
        // The defaults: no --allow-debug, no --allow-provisional-firmware.
        let mut x = s.expectations();
        x.allow_debug = false;
        x.allow_provisional_firmware = false;
        let f = failed(&s.run(&s.report, &s.endorsement(), &x, s.now()))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        let mut want = Vec::new();
        if s.exp["checks"]["debug_policy_bit19"] == Value::Bool(true) {
            want.push("policy.debug");
        }
        if s.exp["checks"]["committed_equals_current"] == Value::Bool(false) {
            want.push("firmware.provisional");
        }
        assert_eq!(f, want, "{}", s.name);
        // No REPORT_DATA expected: refused unless waived.
        x = s.expectations();
        x.report_data = None;
        let out = s.run(&s.report, &s.endorsement(), &x, s.now());
        assert_eq!(failed(&out), ["expect.report_data"], "{}", s.name);
        x.waive_report_data = true;
        assert!(failed(&s.run(&s.report, &s.endorsement(), &x, s.now())).is_empty());
        // No MEASUREMENT expected: refused the same way unless waived.
        x = s.expectations();
        x.measurement = None;
        let out = s.run(&s.report, &s.endorsement(), &x, s.now());
        assert_eq!(failed(&out), ["expect.measurement"], "{}", s.name);
        x.waive_measurement = true;
        let out = s.run(&s.report, &s.endorsement(), &x, s.now());
        assert!(failed(&out).is_empty(), "{}", s.name);
        let skipped = out.iter().find(|c| c.0 == "expect.measurement").unwrap();
        assert_eq!(skipped.1, Status::Skip, "{}", s.name);
    }
    // The two sets the issue names.
    let all = sets("expiry_debug_and_provisional_firmware");
    if !all.is_empty() {
        assert!(all.iter().any(|s| s.name == "milan-v2-debug-gosevguest"));
        assert!(all.iter().any(|s| s.name == "milan-v3-vlek-trustee"));
    }
}

#[test]
fn owner_expectations_each_fail_alone() {
    for s in sets("owner_expectations_each_fail_alone") {
        let r = &s.report;
        let base = s.expectations();
        let cases: Vec<(&str, Expectations)> = vec![
            (
                "expect.measurement",
                Expectations {
                    measurement: Some([0xAA; 48]),
                    ..base.clone()
                },
            ),
            (
                "expect.report_data",
                Expectations {
                    report_data: Some([0x55; 64]),
                    ..base.clone()
                },
            ),
            (
                "expect.host_data",
                Expectations {
                    host_data: Some([0x11; 32]),
                    ..base.clone()
                },
            ),
            (
                "expect.family_id",
                Expectations {
                    family_id: Some([0x22; 16]),
                    ..base.clone()
                },
            ),
            (
                "expect.image_id",
                Expectations {
                    image_id: Some([0x33; 16]),
                    ..base.clone()
                },
            ),
            (
                "expect.report_id",
                Expectations {
                    report_id: Some([0x44; 32]),
                    ..base.clone()
                },
            ),
            (
                "expect.chip_id",
                Expectations {
                    chip_id: Some([0x66; 64]),
                    ..base.clone()
                },
            ),
            (
                "expect.guest_svn",
                Expectations {
                    min_guest_svn: Some(r.guest_svn + 1),
                    ..base.clone()
                },
            ),
            (
                "expect.build",
                Expectations {
                    min_build: Some(r.current_version.build.saturating_add(1)),
                    ..base.clone()
                },
            ),
            (
                "expect.version",
                Expectations {
                    min_version: Some((r.current_version.major, r.current_version.minor + 1)),
                    ..base.clone()
                },
            ),
            (
                "expect.vmpl",
                Expectations {
                    vmpl: Some(r.vmpl + 1),
                    ..base.clone()
                },
            ),
            (
                "expect.id_key",
                Expectations {
                    trusted_id_keys: vec![[0x77; 48]],
                    ..base.clone()
                },
            ),
            (
                "expect.author_key",
                Expectations {
                    require_author_key: true,
                    ..base.clone()
                },
            ),
            (
                "expect.minimum_tcb",
                Expectations {
                    min_tcb: Some(sev_validate::snp::validate::MinTcb::Components {
                        fmc: 0,
                        bl: 0,
                        tee: 0,
                        snp: 0,
                        ucode: 255,
                    }),
                    ..base.clone()
                },
            ),
            (
                "expect.minimum_launch_tcb",
                Expectations {
                    min_launch_tcb: Some(sev_validate::snp::validate::MinTcb::Components {
                        fmc: 0,
                        bl: 255,
                        tee: 0,
                        snp: 0,
                        ucode: 0,
                    }),
                    ..base.clone()
                },
            ),
            (
                "expect.current_mit_vector",
                Expectations {
                    min_current_mit_vector: Some(1 << 40),
                    ..base.clone()
                },
            ),
            (
                "expect.launch_mit_vector",
                Expectations {
                    min_launch_mit_vector: Some(1 << 40),
                    ..base.clone()
                },
            ),
            (
                "policy.maximum",
                Expectations {
                    max_policy: Some(0x30000 | (0xFF << 8)),
                    ..base.clone()
                },
            ),
            (
                "expect.platform_info",
                Expectations {
                    max_platform_info: Some(0),
                    ..base.clone()
                },
            ),
        ];
        for (name, x) in cases {
            if name == "expect.platform_info" && r.platform_info == 0 {
                continue;
            }
            let f = failed(&s.run(r, &s.endorsement(), &x, s.now()))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
            assert_eq!(f, [name], "{} {name}", s.name);
        }
        // And they pass with the report's own values.
        let mut own = base.clone();
        own.host_data = Some(r.host_data);
        own.family_id = Some(r.family_id);
        own.image_id = Some(r.image_id);
        own.report_id = Some(r.report_id);
        own.report_id_ma = Some(r.report_id_ma);
        own.chip_id = Some(r.chip_id);
        own.min_guest_svn = Some(r.guest_svn);
        own.min_build = Some(r.current_version.build);
        own.min_version = Some((r.current_version.major, r.current_version.minor));
        own.vmpl = Some(r.vmpl);
        own.trusted_id_keys = vec![r.id_key_digest];
        own.min_tcb = Some(sev_validate::snp::validate::MinTcb::Raw(r.reported_tcb));
        own.min_launch_tcb = Some(sev_validate::snp::validate::MinTcb::Raw(r.launch_tcb));
        own.min_current_mit_vector = r.current_mit_vector;
        own.min_launch_mit_vector = r.launch_mit_vector;
        own.max_policy = Some(r.policy.0);
        own.max_platform_info = Some(r.platform_info);
        let out = s.run(r, &s.endorsement(), &own, s.now());
        assert!(
            failed(&out).is_empty(),
            "{}: {:?}",
            s.name,
            out.iter()
                .filter(|c| c.1 == Status::Fail)
                .collect::<Vec<_>>()
        );
        // Turin's PLATFORM_INFO bit 6 is a named bit, not an error.
        if r.platform_info & 0x40 != 0 {
            let pi = out.iter().find(|c| c.0 == "expect.platform_info").unwrap();
            assert!(pi.2.contains("IOMMU_WRITE_SAFE"), "{}", pi.2);
        }
    }
}

/// openssl's verdicts on the report signature (R/S converted to DER) and on
/// the chain (`openssl verify -CAfile ark -untrusted ask vek`).
#[test]
fn openssl_agrees_with_signature_and_chain_verdicts() {
    if Command::new("openssl").arg("version").output().is_err() {
        common::skip_or_fail("openssl_agrees", "openssl is not installed");
        return;
    }
    let all = sets("openssl_agrees");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let b = TrustAnchors::builtin();
    let write_pem = |path: &Path, c: &Certificate| {
        fs::write(path, x509_pem(&c.der)).unwrap();
    };
    for s in &all {
        let p = s.product();
        let role = if s.is_vlek() {
            CaRole::Asvk
        } else {
            CaRole::Ask
        };
        fs::write(t.join("vek.pem"), x509_pem(&s.vek.der)).unwrap();
        let pubkey = Command::new("openssl")
            .args(["x509", "-in"])
            .arg(t.join("vek.pem"))
            .args(["-pubkey", "-noout", "-out"])
            .arg(t.join("vek.pub"))
            .status()
            .unwrap();
        assert!(pubkey.success());
        for flip in [None, Some(0x90usize), Some(0x2A0)] {
            let mut bytes = s.report_bytes.clone();
            if let Some(i) = flip {
                bytes[i] ^= 1;
            }
            let r = AttestationReport::parse(&bytes).unwrap();
            let ours = snp_cert::verify_report_signature(&r, &s.vek).is_ok();
            fs::write(t.join("signed"), &bytes[..0x2A0]).unwrap();
            fs::write(t.join("sig.der"), ecdsa_der(&bytes)).unwrap();
            let theirs = Command::new("openssl")
                .args(["dgst", "-sha384", "-verify"])
                .arg(t.join("vek.pub"))
                .arg("-signature")
                .arg(t.join("sig.der"))
                .arg(t.join("signed"))
                .output()
                .unwrap()
                .status
                .success();
            assert_eq!(ours, theirs, "{} flip {flip:?}", s.name);
            assert_eq!(ours, flip.is_none(), "{} flip {flip:?}", s.name);
        }
        // The chain, with this product's anchors and with every other's.
        for q in Product::ALL {
            let (ark, ask) = (b.get(q, CaRole::Ark).unwrap(), b.get(q, role).unwrap());
            write_pem(&t.join("ark.pem"), ark);
            write_pem(&t.join("ask.pem"), ask);
            let theirs = Command::new("openssl")
                .arg("verify")
                .arg("-attime")
                .arg(s.now().to_string())
                .arg("-CAfile")
                .arg(t.join("ark.pem"))
                .arg("-untrusted")
                .arg(t.join("ask.pem"))
                .arg(t.join("vek.pem"))
                .output()
                .unwrap()
                .status
                .success();
            let ours = ark.signed_by(ark).is_ok()
                && ask.signed_by(ark).is_ok()
                && s.vek.signed_by(ask).is_ok();
            assert_eq!(ours, theirs, "{} chain under {q}", s.name);
            assert_eq!(ours, q == p, "{} chain under {q}", s.name);
        }
    }
}

fn x509_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

/// The report's little-endian R and S as an ASN.1 ECDSA-Sig-Value.
fn ecdsa_der(report: &[u8]) -> Vec<u8> {
    let int = |le: &[u8]| {
        let mut be: Vec<u8> = le[..48].iter().rev().copied().collect();
        while be.len() > 1 && be[0] == 0 {
            be.remove(0);
        }
        if be[0] & 0x80 != 0 {
            be.insert(0, 0);
        }
        let mut v = vec![0x02, be.len() as u8];
        v.extend(be);
        v
    };
    let (r, s) = (int(&report[0x2A0..0x2E8]), int(&report[0x2E8..0x330]));
    let mut v = vec![0x30, (r.len() + s.len()) as u8];
    v.extend(r);
    v.extend(s);
    v
}

#[test]
fn containers_are_detected_and_named() {
    let Some(dir) = snp_dir("containers_are_detected_and_named") else {
        return;
    };
    let raw = fs::read(dir.join("turin-v5-microsoft/report.bin")).unwrap();
    let table = fs::read(dir.join("synthetic/turin-v5-microsoft.certtable.bin")).unwrap();
    // SNP_GET_REPORT response: status 0, size 0x4A0, report at +0x20, in the 4000-byte buffer.
    let mut resp = vec![0u8; 4000];
    resp[4..8].copy_from_slice(&0x4A0u32.to_le_bytes());
    resp[0x20..0x20 + 0x4A0].copy_from_slice(&raw);
    let i = snp_report::parse_input(&resp).unwrap();
    assert_eq!(i.container, snp_report::Container::GetReportResponse);
    assert_eq!(&i.report.raw[..], &raw[..]);
    // Report followed by the cert table.
    let mut with = raw.clone();
    with.extend_from_slice(&table);
    let i = snp_report::parse_input(&with).unwrap();
    assert_eq!(i.container, snp_report::Container::ReportWithCertTable);
    let t = i.cert_table.unwrap();
    let vcek = Certificate::from_der(t.get(snp_report::CertKind::Vcek).unwrap()).unwrap();
    let own =
        Certificate::from_der_or_pem(&fs::read(dir.join("turin-v5-microsoft/vcek.pem")).unwrap())
            .unwrap();
    assert_eq!(vcek.der, own.der);
    let ark = Certificate::from_der(t.get(snp_report::CertKind::Ark).unwrap()).unwrap();
    assert_eq!(ark.subject.cn(), "ARK-Turin");
    let ask = Certificate::from_der(t.get(snp_report::CertKind::Ask).unwrap()).unwrap();
    assert_eq!(ask.subject.cn(), "SEV-Turin");
}
