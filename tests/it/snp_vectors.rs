//! Public SEV-SNP test vectors (../shared/vectors/VECTORS.json): every SNP
//! launch digest (QEMU, ec2 with RDX 0x600 and virtee/sev's RDX 0, gce, both
//! guest-feature values, with and without a kernel, 1 and 4 vCPUs, from the
//! image and from a precomputed OVMF hash, the old 2023 fixtures with the
//! no-FPU VMSA), and the ID block, key digest and ID auth vectors. Each digest
//! is computed through the library and, where the command line can express
//! the case, through `virt-qemu-sev-validate snp-digest` too.
//!
//! Also: the refusals of the SNP subcommands (exit 2 with a clear message,
//! never a panic). The SEV-ES INIT2 vectors (13810ae6…, 0dccbcab…) are
//! checked by vectors.rs.

use crate::common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use sev_validate::core::id_block::{self, IdAuth, IdBlock, SnpKey};
use sev_validate::core::snp::{self, SnpFirmware, SnpLaunch};
use sev_validate::core::vmsa::{Rdx, VmmType, VmsaConfig, VmsaForm};
use sev_validate::input;

use common::vectors_dir;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn load(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("VECTORS.json")).unwrap()).unwrap()
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn parse_hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn tail_of(path: &Path) -> Vec<u8> {
    let data = fs::read(path).unwrap();
    let n = data.len().min(sev_validate::core::ovmf::FOOTER_TAIL_LEN);
    data[data.len() - n..].to_vec()
}

fn ovmf_hash_of(path: &Path) -> [u8; 48] {
    let f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    snp::ovmf_hash(f, len).unwrap()
}

/// One SNP launch-digest vector, decoded.
struct Case {
    name: String,
    ovmf: PathBuf,
    expected: String,
    vmm: VmmType,
    rdx0: bool,
    form: VmsaForm,
    vcpus: u32,
    sig: u32,
    features: u64,
    /// (kernel, initrd, append) with paths made real.
    kernel: Option<(PathBuf, Option<PathBuf>, Option<String>)>,
    seed: Option<String>,
}

fn decode(v: &Value, dir: &Path, empty: &Path) -> Case {
    let mode = str_field(v, "mode").unwrap();
    let source = str_field(v, "source").unwrap();
    let vmm = if mode.contains("vmm=ec2") {
        VmmType::Ec2
    } else if mode.contains("vmm=gce") {
        VmmType::Gce
    } else {
        VmmType::Qemu
    };
    let real = |rel: &str| {
        if rel.is_empty() {
            empty.to_path_buf()
        } else {
            dir.join(rel)
        }
    };
    let kernel = str_field(v, "kernel").map(|k| {
        (
            real(k),
            str_field(v, "initrd").map(real),
            str_field(v, "append").map(str::to_string),
        )
    });
    Case {
        name: format!("{mode} -> {}", str_field(v, "expected").unwrap()),
        ovmf: dir.join(str_field(v, "ovmf").unwrap()),
        expected: str_field(v, "expected").unwrap().to_string(),
        vmm,
        rdx0: mode.contains("rdx=0)") || mode.ends_with("rdx=0"),
        // The 9dabc4b vectors predate KVM_SEV_INIT2: no MXCSR/FCW in the VMSA.
        form: if source.contains("9dabc4b") || mode.contains("no fpu") {
            VmsaForm::Legacy
        } else {
            VmsaForm::Init2
        },
        vcpus: v.get("vcpus").and_then(Value::as_u64).unwrap_or(1) as u32,
        sig: str_field(v, "vcpu_sig").map(parse_hex_u64).unwrap_or(0) as u32,
        features: str_field(v, "guest_features")
            .map(parse_hex_u64)
            .unwrap_or(1),
        kernel,
        seed: str_field(v, "snp_ovmf_hash").map(str::to_string),
    }
}

fn library_digest(c: &Case, seed: Option<[u8; 48]>) -> String {
    let fw = SnpFirmware::parse(&tail_of(&c.ovmf)).unwrap();
    let hashes = c
        .kernel
        .as_ref()
        .map(|(k, i, a)| input::kernel_hashes(k, i.as_deref(), a.as_deref()).unwrap());
    let mut profile = c.vmm.profile();
    if c.rdx0 {
        profile.rdx = Rdx::Fixed(0);
    }
    let launch = SnpLaunch {
        vcpus: c.vcpus,
        vmm: profile,
        vmsa: VmsaConfig {
            form: c.form,
            cpu_signature: c.sig,
            sev_features: c.features,
        },
        kernel: hashes.as_ref(),
    };
    let ovmf = seed.unwrap_or_else(|| ovmf_hash_of(&c.ovmf));
    hex::encode(snp::launch_digest(ovmf, &fw, &launch).unwrap())
}

fn cli_args(c: &Case, seed: Option<&str>, format: &str) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "snp-digest".into(),
        "--ovmf".into(),
        c.ovmf.display().to_string(),
        "--vcpus".into(),
        c.vcpus.to_string(),
        "--vmm-type".into(),
        c.vmm.name().into(),
        "--guest-features".into(),
        format!("{:#x}", c.features),
        "--output-format".into(),
        format.into(),
    ];
    if c.vmm == VmmType::Qemu {
        a.extend(["--vcpu-sig".into(), format!("{:#x}", c.sig)]);
        if c.form == VmsaForm::Legacy {
            a.extend(["--vmsa-form".into(), "legacy".into()]);
        }
    }
    if let Some((k, i, app)) = &c.kernel {
        a.extend(["--kernel".into(), k.display().to_string()]);
        if let Some(i) = i {
            a.extend(["--initrd".into(), i.display().to_string()]);
        }
        if let Some(app) = app {
            a.extend(["--append".into(), app.clone()]);
        }
    }
    if let Some(s) = seed {
        a.extend(["--ovmf-hash".into(), s.into()]);
    }
    a
}

fn cli_digest(c: &Case, seed: Option<&str>) -> String {
    let (code, out, err) = common::run(cli_args(c, seed, "hex"));
    assert_eq!(code, 0, "{}: snp-digest failed: {err}", c.name);
    let hex_out = out.trim().to_string();
    // The base64 form is the same bytes.
    let (code, out, err) = common::run(cli_args(c, seed, "base64"));
    assert_eq!(code, 0, "{}: snp-digest failed: {err}", c.name);
    assert_eq!(hex::encode(b64(out.trim())), hex_out, "{}", c.name);
    hex_out
}

#[test]
fn snp_launch_digests() {
    let Some(dir) = vectors_dir("snp_launch_digests") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::write(&empty, b"").unwrap();
    let all = load(&dir);
    let vectors: Vec<&Value> = all["launch_digests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| str_field(v, "mode").unwrap().starts_with("snp"))
        .collect();
    // The OVMF hash of the current AmdSev fixture seeds the same vectors again.
    let mut current_seed = None;
    let (mut library, mut cli, mut seeded) = (0, 0, 0);
    for v in &vectors {
        let mode = str_field(v, "mode").unwrap();
        let ovmf = dir.join(str_field(v, "ovmf").unwrap());
        let expected = str_field(v, "expected").unwrap();
        if mode == "snp:ovmf-hash" {
            assert_eq!(hex::encode(ovmf_hash_of(&ovmf)), expected, "{mode}");
            let (code, out, err) = common::run(["snp-ovmf-hash", "--ovmf", ovmf.to_str().unwrap()]);
            assert_eq!((code, out.trim()), (0, expected), "{err}");
            if str_field(v, "ovmf").unwrap() == "sev-snp-measure/ovmf_AmdSev_suffix.bin" {
                current_seed = Some(expected.to_string());
            }
            library += 1;
            cli += 1;
            continue;
        }
        let c = decode(v, &dir, &empty);
        let seed = c
            .seed
            .as_deref()
            .map(|s| <[u8; 48]>::try_from(hex::decode(s).unwrap()).unwrap());
        assert_eq!(library_digest(&c, seed), c.expected, "library: {}", c.name);
        library += 1;
        if !c.rdx0 {
            // The command line has no RDX-0 ec2 variant (sev-snp-measure 0.0.13 uses 0x600).
            assert_eq!(
                cli_digest(&c, c.seed.as_deref()),
                c.expected,
                "cli: {}",
                c.name
            );
            cli += 1;
        }
    }
    // "The SNP vectors that use --snp-ovmf-hash with the hash above give the same values."
    let seed_hex = current_seed.expect("the snp:ovmf-hash vector of the current AmdSev fixture");
    let seed = <[u8; 48]>::try_from(hex::decode(&seed_hex).unwrap()).unwrap();
    for v in &vectors {
        if str_field(v, "ovmf").unwrap() != "sev-snp-measure/ovmf_AmdSev_suffix.bin"
            || str_field(v, "mode").unwrap() == "snp:ovmf-hash"
        {
            continue;
        }
        let c = decode(v, &dir, &empty);
        assert_eq!(
            library_digest(&c, Some(seed)),
            c.expected,
            "seeded: {}",
            c.name
        );
        if !c.rdx0 && c.vmm == VmmType::Qemu {
            assert_eq!(
                cli_digest(&c, Some(&seed_hex)),
                c.expected,
                "seeded cli: {}",
                c.name
            );
        }
        seeded += 1;
    }
    eprintln!(
        "SNP launch digests: {} vectors, {library} through the library, {cli} through the command line, {seeded} again from the OVMF hash",
        vectors.len()
    );
    assert_eq!(library, vectors.len());
    assert!(vectors.len() >= 30, "VECTORS.json lost SNP vectors");
}

fn read_key(dir: &Path, rel: &str) -> SnpKey {
    SnpKey::from_pem(&fs::read_to_string(dir.join(rel)).unwrap()).unwrap()
}

fn expected_ld(v: &Value) -> [u8; 48] {
    let raw = match (str_field(v, "ld_b64"), str_field(v, "ld_hex")) {
        (Some(b), _) => b64(b),
        (None, Some(h)) => hex::decode(h).unwrap(),
        _ => panic!("vector without a launch digest"),
    };
    raw.try_into().unwrap()
}

#[test]
fn snp_id_block_vectors() {
    let Some(dir) = vectors_dir("snp_id_block_vectors") else {
        return;
    };
    let all = load(&dir);
    let vectors = all["snp_id_block"].as_array().unwrap();
    assert!(vectors.len() >= 2);
    for v in vectors {
        let ld = expected_ld(v);
        let block = IdBlock::new(ld);
        let id_rel = str_field(v, "id_key").unwrap();
        let author_rel = str_field(v, "author_key").unwrap();
        let (id, author) = (read_key(&dir, id_rel), read_key(&dir, author_rel));
        assert_eq!(
            b64e(&block.to_bytes()),
            str_field(v, "expected_id_block_b64").unwrap()
        );
        assert_eq!(
            b64e(&id.public_key_digest()),
            str_field(v, "id_key_digest_b64").unwrap()
        );
        assert_eq!(
            b64e(&author.public_key_digest()),
            str_field(v, "author_key_digest_b64").unwrap()
        );

        // A freshly signed ID auth verifies, and carries both public keys.
        let auth = IdAuth::sign(&block, &id, Some(&author));
        auth.verify(&block).unwrap();
        assert_eq!(auth.id_key, id.public_key());
        assert_eq!(auth.author_key, author.public_key());

        // The same through the command line, with the digest as given (hex or base64).
        let digest_arg = str_field(v, "ld_b64")
            .or(str_field(v, "ld_hex"))
            .unwrap()
            .to_string();
        let (code, out, err) = common::run([
            "snp-id-block",
            "--digest",
            &digest_arg,
            "--id-key",
            dir.join(id_rel).to_str().unwrap(),
            "--author-key",
            dir.join(author_rel).to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let qemu = out
            .lines()
            .find(|l| l.starts_with("id-block="))
            .expect("a QEMU line");
        let (mut cli_block, mut cli_auth) = (None, None);
        for part in qemu.split(',') {
            if let Some(b) = part.strip_prefix("id-block=") {
                cli_block = Some(b64(b));
            } else if let Some(a) = part.strip_prefix("id-auth=") {
                cli_auth = Some(b64(a));
            }
        }
        assert!(qemu.ends_with(",author-key-enabled=on"), "{qemu}");
        let cli_block = cli_block.unwrap();
        assert_eq!(
            b64e(&cli_block),
            str_field(v, "expected_id_block_b64").unwrap()
        );
        let cli_auth: [u8; 4096] = cli_auth.unwrap().try_into().unwrap();
        IdAuth::from_bytes(&cli_auth).verify(&block).unwrap();
        assert!(out.contains(&format!(
            "<idBlock>{}</idBlock>",
            str_field(v, "expected_id_block_b64").unwrap()
        )));
        assert!(out.contains("<launchSecurity type='sev-snp' authorKey='yes'>"));
        assert!(out.contains(&format!(
            "id_key_digest: {}\n",
            hex::encode(b64(str_field(v, "id_key_digest_b64").unwrap()))
        )));
        assert!(out.contains(&format!(
            "author_key_digest: {}\n",
            hex::encode(b64(str_field(v, "author_key_digest_b64").unwrap()))
        )));

        // virtee/sev: the stored signatures verify, and the ID auth built from them is
        // byte for byte the stored block.
        if let Some(expected_auth) = str_field(v, "expected_id_auth") {
            let sig =
                |rel: &str| -> [u8; 512] { fs::read(dir.join(rel)).unwrap().try_into().unwrap() };
            let block_sig = sig(str_field(v, "id_block_sig")
                .unwrap()
                .split(' ')
                .next()
                .unwrap());
            let key_sig = sig(str_field(v, "id_key_sig")
                .unwrap()
                .split(' ')
                .next()
                .unwrap());
            id_block::verify(&id.public_key(), &block.to_bytes(), &block_sig).unwrap();
            id_block::verify(&author.public_key(), &id.public_key(), &key_sig).unwrap();
            // ... and not over anything else.
            assert_eq!(
                id_block::verify(&author.public_key(), &block.to_bytes(), &block_sig),
                Err(id_block::KeyError::VerifyFailed)
            );
            let stored = IdAuth {
                id_key_algo: 1,
                auth_key_algo: 1,
                id_block_sig: block_sig,
                id_key: id.public_key(),
                id_key_sig: key_sig,
                author_key: author.public_key(),
            };
            let want = fs::read(dir.join(expected_auth)).unwrap();
            assert_eq!(&stored.to_bytes()[..], &want[..]);
            let parsed = IdAuth::from_bytes(&want.clone().try_into().unwrap());
            assert_eq!(parsed, stored);
            parsed.verify(&block).unwrap();
        }
    }
}

#[test]
fn id_block_options_and_no_author_key() {
    let Some(dir) = vectors_dir("id_block_options_and_no_author_key") else {
        return;
    };
    let ld = "a14d638341e5674628fe1e02fbedebe5e5ab4faf1dd72d8966068e615bb99efd13d214b35c231715b38e263dc6059745";
    let family = "00112233445566778899aabbccddeeff";
    let image = "ffeeddccbbaa99887766554433221100";
    let (code, out, err) = common::run([
        "snp-id-block",
        "--digest",
        ld,
        "--id-key",
        dir.join("virtee-sev/test_id_key.pem").to_str().unwrap(),
        "--policy",
        "0x30001",
        "--family-id",
        family,
        "--image-id",
        image,
        "--svn",
        "7",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("id-block=")).unwrap();
    assert!(!line.contains("author-key-enabled"), "{line}");
    assert!(out.contains("<launchSecurity type='sev-snp'>"), "{out}");
    assert!(out.contains("<policy>0x00030001</policy>"), "{out}");
    assert!(!out.contains("author_key_digest"), "{out}");
    let block_b64 = line
        .split(',')
        .find_map(|p| p.strip_prefix("id-block="))
        .unwrap();
    let bytes = b64(block_b64);
    assert_eq!(hex::encode(&bytes[..48]), ld);
    assert_eq!(hex::encode(&bytes[0x30..0x40]), family);
    assert_eq!(hex::encode(&bytes[0x40..0x50]), image);
    assert_eq!(
        &bytes[0x50..0x60],
        &[1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0]
    );
    let auth_b64 = line
        .split(',')
        .find_map(|p| p.strip_prefix("id-auth="))
        .unwrap();
    let auth = IdAuth::from_bytes(&b64(auth_b64).try_into().unwrap());
    assert_eq!((auth.id_key_algo, auth.auth_key_algo), (1, 0));
    let mut block = IdBlock::new(bytes[..48].try_into().unwrap());
    block.family_id = hex::decode(family).unwrap().try_into().unwrap();
    block.image_id = hex::decode(image).unwrap().try_into().unwrap();
    block.guest_svn = 7;
    block.policy = 0x30001;
    assert_eq!(&block.to_bytes()[..], &bytes[..]);
    auth.verify(&block).unwrap();
}

// ------------------------------------------------------------------ refusals ----

/// P-256 keys (openssl ecparam -name prime256v1 -genkey; openssl pkcs8 -topk8).
const P256_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIPgeJfIuHXk22Fcb6eg/GAm0A/fLXvZiLLqC2bIyH0YkoAoGCCqGSM49
AwEHoUQDQgAE+4ajI13fAwYdwId60ffQilP012EjYWii1ddf4D1zGJmq5MJh8JLl
0vAevlEa1Bd5caVwIzudBIMCYZ2s0rheHg==
-----END EC PRIVATE KEY-----
";
const P256_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+B4l8i4deTbYVxvp
6D8YCbQD98te9mIsuoLZsjIfRiShRANCAAT7hqMjXd8DBh3Ah3rR99CKU/TXYSNh
aKLV11/gPXMYmarkwmHwkuXS8B6+URrUF3lxpXAjO50EgwJhnazSuF4e
-----END PRIVATE KEY-----
";
/// An Ed25519 key (openssl genpkey -algorithm ed25519).
const ED25519_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIG4UMePUOxwgf84UK2Ea/dKTEJ78DFIIpO/J6KeQ115b
-----END PRIVATE KEY-----
";

/// Runs a subcommand that must be refused: exit 2, `ERROR:` with every one
/// of `needles`, no panic.
fn refused(args: &[&str], needles: &[&str]) {
    let (code, out, err) = common::run(args);
    assert_eq!(
        code, 2,
        "{args:?}: want exit 2, got {code}; stdout {out}; stderr {err}"
    );
    assert!(
        err.starts_with("ERROR: ") || err.contains("error:"),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks '{n}': {err}");
    }
    assert!(out.is_empty(), "{args:?}: printed {out}");
}

#[test]
fn snp_digest_refusals() {
    let Some(dir) = vectors_dir("snp_digest_refusals") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::write(&empty, b"").unwrap();
    let amdsev = dir.join("sev-snp-measure/ovmf_AmdSev_suffix.bin");
    let x64 = dir.join("sev-snp-measure/ovmf_OvmfX64_suffix.bin");
    let (amdsev, x64, empty) = (
        amdsev.to_str().unwrap(),
        x64.to_str().unwrap(),
        empty.to_str().unwrap(),
    );

    // A kernel, but the firmware has no SNP_KERNEL_HASHES section.
    refused(
        &[
            "snp-digest",
            "--ovmf",
            x64,
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC-v4",
            "--kernel",
            empty,
        ],
        &["SNP_KERNEL_HASHES", "--kernel"],
    );
    // A firmware with a footer table but no SEV metadata.
    let no_meta = tmp.path().join("no-metadata.fd");
    fs::write(&no_meta, common::amdsev_like_firmware()).unwrap();
    refused(
        &[
            "snp-digest",
            "--ovmf",
            no_meta.to_str().unwrap(),
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
        ],
        &["no SEV metadata", "dc886566-984a-4798-a75e-5585a7bf67cc"],
    );
    // No footer table at all.
    let plain = tmp.path().join("plain.fd");
    fs::write(&plain, vec![0x5au8; 8192]).unwrap();
    refused(
        &[
            "snp-digest",
            "--ovmf",
            plain.to_str().unwrap(),
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
        ],
        &["no OVMF footer table"],
    );
    // Not whole pages.
    let odd = tmp.path().join("odd.fd");
    fs::write(&odd, vec![0u8; 5000]).unwrap();
    refused(
        &[
            "snp-digest",
            "--ovmf",
            odd.to_str().unwrap(),
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
        ],
        &["multiple of 4096"],
    );
    refused(
        &["snp-ovmf-hash", "--ovmf", odd.to_str().unwrap()],
        &["multiple of 4096"],
    );
    // Missing firmware file.
    refused(
        &[
            "snp-digest",
            "--ovmf",
            "/nonexistent/OVMF.fd",
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
        ],
        &["no such file"],
    );
    // Unknown vCPU model.
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "1",
            "--vcpu-type",
            "Skylake-Server",
        ],
        &[
            "unknown vCPU model 'Skylake-Server'",
            "EPYC-Milan",
            "--vcpu-sig",
        ],
    );
    // QEMU needs a vCPU signature; conflicting forms are refused.
    refused(
        &["snp-digest", "--ovmf", amdsev, "--vcpus", "1"],
        &["--vcpu-type"],
    );
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
            "--vcpu-sig",
            "0x800f12",
        ],
        &["only one of"],
    );
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "1",
            "--vcpu-family",
            "25",
        ],
        &["go together"],
    );
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "1",
            "--vcpu-family",
            "25",
            "--vcpu-model",
            "300",
            "--vcpu-stepping",
            "1",
        ],
        &["out of range"],
    );
    // vCPU count.
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "0",
            "--vcpu-type",
            "EPYC",
        ],
        &["between 1 and"],
    );
    // --initrd / --append without --kernel.
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
            "--append",
            "x",
        ],
        &["need --kernel"],
    );
    // A malformed precomputed OVMF hash.
    refused(
        &[
            "snp-digest",
            "--ovmf",
            amdsev,
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
            "--ovmf-hash",
            "abcd",
        ],
        &["--ovmf-hash", "48 bytes"],
    );
    // clap's own errors are exit 2 too.
    let (code, _, err) = common::run([
        "snp-digest",
        "--ovmf",
        amdsev,
        "--vcpus",
        "1",
        "--vmm-type",
        "krun",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("krun"), "{err}");
    // --help is exit 0 and lists every option.
    let (code, out, _) = common::run(["snp-digest", "--help"]);
    assert_eq!(code, 0);
    for opt in [
        "--ovmf",
        "--ovmf-hash",
        "--vcpus",
        "--vcpu-type",
        "--vcpu-sig",
        "--vcpu-family",
        "--vcpu-model",
        "--vcpu-stepping",
        "--vmm-type",
        "--guest-features",
        "--vmsa-form",
        "--kernel",
        "--initrd",
        "--append",
        "--output-format",
    ] {
        assert!(out.contains(opt), "snp-digest --help lacks {opt}");
    }
}

#[test]
fn snp_id_block_refusals() {
    let Some(dir) = vectors_dir("snp_id_block_refusals") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let good = dir.join("virtee-sev/test_id_key.pem");
    let good = good.to_str().unwrap();
    let ld = "a14d638341e5674628fe1e02fbedebe5e5ab4faf1dd72d8966068e615bb99efd13d214b35c231715b38e263dc6059745";
    let p256_sec1 = write("p256.pem", P256_SEC1);
    let p256_pkcs8 = write("p256-pkcs8.pem", P256_PKCS8);
    let ed = write("ed25519.pem", ED25519_PKCS8);
    let garbage = write("garbage.pem", "this is not a key\n");
    let broken = write(
        "broken.pem",
        "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDPZQkU2FP1ii90R+e7\n-----END PRIVATE KEY-----\n",
    );
    let bad_b64 = write(
        "bad-b64.pem",
        "-----BEGIN EC PRIVATE KEY-----\n!!!not base64!!!\n-----END EC PRIVATE KEY-----\n",
    );
    let public = write(
        "public.pem",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+4ajI13fAwYdwId60ffQilP012Ej\nYWii1ddf4D1zGJmq5MJh8JLl0vAevlEa1Bd5caVwIzudBIMCYZ2s0rheHg==\n-----END PUBLIC KEY-----\n",
    );
    fn id<'a>(ld: &'a str, key: &'a str) -> Vec<&'a str> {
        vec!["snp-id-block", "--digest", ld, "--id-key", key]
    }

    refused(&id(ld, &p256_sec1), &["ID key", "P-256", "P-384"]);
    refused(&id(ld, &p256_pkcs8), &["ID key", "P-256", "P-384"]);
    refused(&id(ld, &ed), &["Ed25519", "P-384"]);
    refused(&id(ld, &garbage), &["not a PEM file"]);
    refused(&id(ld, &broken), &["malformed"]);
    refused(&id(ld, &bad_b64), &["PEM"]);
    refused(&id(ld, &public), &["no private key", "PUBLIC KEY"]);
    refused(&id(ld, "/nonexistent/key.pem"), &["no such file"]);
    let mut with_author = id(ld, good);
    with_author.extend(["--author-key", &p256_sec1]);
    refused(&with_author, &["author key", "P-256"]);
    refused(
        &["snp-id-block", "--digest", "abcd", "--id-key", good],
        &["--digest", "48 bytes"],
    );
    refused(
        &["snp-id-block", "--digest", "%%%", "--id-key", good],
        &["--digest", "neither"],
    );
    let mut p = id(ld, good);
    p.extend(["--policy", "0x10000"]);
    refused(&p, &["bit 17"]);
    let mut f = id(ld, good);
    f.extend(["--family-id", "0011"]);
    let (code, _, err) = common::run(&f);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("32 hex digits"), "{err}");
}
