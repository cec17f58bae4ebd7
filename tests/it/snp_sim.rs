//! The simulated SNP Secure Processor as the Rust tests use it
//! (tests/common/snp_sim.rs): for each product a chain that the `openssl`
//! command line verifies, and a report for a measured launch whose
//! MEASUREMENT is sev-snp-measure's, whose REPORTED_TCB and CHIP_ID are the
//! VCEK's, and whose signature `openssl dgst` accepts. The simulator's own
//! checks against real reports and certificates are tests/sim/test_snp_sp.py.

use crate::common;
use crate::common::snp_sim;

use std::path::Path;
use std::process::Command;

fn openssl(args: &[&Path]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// ECDSA-Sig-Value DER from the report's little-endian R and S.
fn signature_der(report: &[u8]) -> Vec<u8> {
    fn int(le: &[u8]) -> Vec<u8> {
        let mut be: Vec<u8> = le.iter().rev().copied().collect();
        while be.len() > 1 && be[0] == 0 {
            be.remove(0);
        }
        if be[0] & 0x80 != 0 {
            be.insert(0, 0);
        }
        let mut out = vec![0x02, be.len() as u8];
        out.extend(be);
        out
    }
    let mut body = int(&report[0x2A0..0x2E8]);
    body.extend(int(&report[0x2E8..0x330]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn sim_chains_and_measured_reports() {
    let Some(vectors) = common::vectors_dir("sim_chains_and_measured_reports") else {
        return;
    };
    if snp_sim::command().is_none() {
        return;
    }
    let ovmf = vectors.join("sev-snp-measure/ovmf_AmdSev_suffix.bin");
    let ovmf = ovmf.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (i, product) in snp_sim::PRODUCTS.iter().enumerate() {
        let dir = tmp.path().join(product);
        let info = snp_sim::chain(product, &dir, &[]).unwrap();
        let (ok, msg) = openssl(&[
            Path::new("verify"),
            Path::new("-CAfile"),
            &dir.join("ark.pem"),
            Path::new("-untrusted"),
            &dir.join("ask.pem"),
            &dir.join("vcek.pem"),
        ]);
        assert!(ok, "{product}: {msg}");

        let vcpus = (i + 1).to_string();
        let launch = [
            "--ovmf",
            ovmf,
            "--vcpus",
            &vcpus,
            "--vcpu-type",
            "EPYC-Milan",
            "--guest-features",
            "0x21",
        ];
        let want = snp_sim::measure(&launch).unwrap();
        assert_eq!(want.len(), 96, "{product}: {want}");
        let out = tmp.path().join(format!("{product}.bin"));
        let got = snp_sim::report(&dir, &out, &launch).unwrap();
        assert_eq!(got, want, "{product}");
        let report = std::fs::read(&out).unwrap();
        assert_eq!(report.len(), 1184);
        assert_eq!(hex::encode(&report[0x90..0xC0]), want);
        let chip = info["chip_id"].as_str().unwrap();
        assert_eq!(&hex::encode(&report[0x1A0..0x1E0])[..chip.len()], chip);
        let tcb = u64::from_str_radix(
            info["tcb"]["raw"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        assert_eq!(report[0x180..0x188], tcb.to_le_bytes(), "{product}");

        // The simulator's own verdicts: all pass now, and the VCEK has expired in 2040.
        let verdicts = snp_sim::check(
            &out,
            &dir.join("vcek.der"),
            &dir.join("cert_chain.pem"),
            "2030-01-01T00:00:00",
        )
        .unwrap();
        for (k, v) in verdicts["checks"].as_object().unwrap() {
            let want = k != "debug_policy_bit19";
            assert_eq!(v.as_bool(), Some(want), "{product}: {k}");
        }
        let later = snp_sim::check(
            &out,
            &dir.join("vcek.der"),
            &dir.join("cert_chain.pem"),
            "2040-01-01T00:00:00",
        )
        .unwrap();
        assert_eq!(later["checks"]["vek_valid_at"], false, "{product}");

        let region = tmp.path().join("region.bin");
        let sig = tmp.path().join("sig.der");
        let publ = tmp.path().join("pub.pem");
        std::fs::write(&region, &report[..0x2A0]).unwrap();
        std::fs::write(&sig, signature_der(&report)).unwrap();
        let out = Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(dir.join("vcek.pem"))
            .output()
            .unwrap();
        std::fs::write(&publ, out.stdout).unwrap();
        let verify = |region: &Path| {
            openssl(&[
                Path::new("dgst"),
                Path::new("-sha384"),
                Path::new("-verify"),
                &publ,
                Path::new("-signature"),
                &sig,
                region,
            ])
        };
        let (ok, msg) = verify(&region);
        assert!(ok && msg.contains("Verified OK"), "{product}: {msg}");
        let mut flipped = report[..0x2A0].to_vec();
        flipped[0x90] ^= 1;
        std::fs::write(&region, &flipped).unwrap();
        assert!(
            !verify(&region).0,
            "{product}: a flipped MEASUREMENT bit verified"
        );
    }
}
