//! The bodies of the fuzz targets, one function per target.
//!
//! This file depends only on `sev_validate` and crates the main package
//! already depends on, so that `tests/it/fuzz_regressions.rs` can include it with
//! `#[path]` and replay every crash input and the committed corpus under a
//! plain `cargo test`, without libFuzzer. Each function must never panic on
//! any input; the assertions are properties that hold for every input.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sev_validate::core::igvm::{Finding, IgvmLaunch, MAX_MEASURED_PAGES};
use sev_validate::core::keys::{self, Tek, Tik};
use sev_validate::core::measurement::{self, Measurement};
use sev_validate::core::ovmf::{self, FooterTable};
use sev_validate::core::secret::{self, SecretTable};
use sev_validate::core::snp;
use sev_validate::core::snp_cert::{pem_certificates, Bundle, Certificate, Crl};
use sev_validate::core::snp_report::{self, CertTable, Product, REPORT_LEN};
use sev_validate::core::snp_secret::{self, sealed, Evidence, KeyPair, KeyReleaseError};
use sev_validate::core::{cpu, guid};
use sev_validate::sev::checks::{check_domain, Context, VmsaKind};
use sev_validate::sev::secrets::SecretSpec;
use sev_validate::snp::domain;
use sev_validate::snp::igvm as snp_igvm;
use sev_validate::snp::key_release::agent;
use sev_validate::source::qmp;
use sev_validate::source::xml::{Capabilities, Domain};
use sev_validate::ExitCode;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A target body: runs on one input, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its fuzz target and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("ovmf_footer", ovmf_footer),
    ("domain_xml", domain_xml),
    ("capabilities_xml", capabilities_xml),
    ("measurement_keys", measurement_keys),
    ("secret_spec", secret_spec),
    ("qmp_message", qmp_message),
    ("secret_table", secret_table),
    ("snp_report", snp_report),
    ("snp_cert_table", snp_cert_table),
    ("snp_crl", snp_crl),
    ("snp_evidence", snp_evidence),
    ("snp_sealed", snp_sealed),
    ("agent_reply", agent_reply),
    ("igvm_file", igvm_file),
];

fn le_u16(b: &[u8]) -> usize {
    u16::from_le_bytes([b[0], b[1]]) as usize
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The input is the tail of a firmware image. The footer table is parsed,
/// every accessor is called, the SEV metadata is parsed at the offset the
/// table gives and at one taken from the first four bytes, and a table that
/// parses is laid out again and must parse back to the same entries.
pub fn ovmf_footer(data: &[u8]) {
    if data.len() >= 4 {
        let offset = le_u32(data);
        if let Ok(sections) = ovmf::parse_sev_metadata(data, offset) {
            assert!(16 + 12 * sections.len() <= offset as usize);
        }
    }
    let table = match FooterTable::parse(data) {
        Ok(Some(t)) => t,
        Ok(None) => {
            assert!(data.len() >= 50);
            return;
        }
        Err(_) => return,
    };
    let _ = table.sev_es_reset_addr();
    let _ = table.secret_area();
    if let Ok(Some(area)) = table.kernel_hash_area() {
        assert!(area.base != 0);
    }
    if let Ok(Some(off)) = table.sev_metadata_offset() {
        let _ = ovmf::parse_sev_metadata(data, off);
    }
    for (g, d) in table.entries() {
        assert!(table.entry(g).is_some());
        assert!(d.len() + 18 <= u16::MAX as usize);
    }
    let again = ovmf::lay_out_footer(table.entries());
    assert_eq!(FooterTable::parse(&again), Ok(Some(table.clone())));
    svsm_image(data, &table);
}

/// The same tail read as a COCONUT-SVSM image (`snp-digest --svsm`): what
/// parses has the table's SVSM info entry and metadata, and a launch of it
/// at a fixed layout is measured or refused, never a panic.
fn svsm_image(data: &[u8], table: &FooterTable) {
    let Ok(image) = snp::SvsmImage::parse(data) else {
        return;
    };
    let info = table
        .entry(&guid::SVSM_INFO)
        .expect("parsed with an SVSM info entry");
    assert_eq!(image.entry_offset.to_le_bytes()[..], info[..4]);
    let layout = snp::SvsmLayout {
        ovmf_len: 0x40_0000,
        vars_len: 0x8_4000,
        svsm_len: 16 * 4096,
    };
    let launch = snp::SvsmLaunch {
        image: &image,
        layout,
        vcpus: 2,
        cpu_signature: 0xA00F11,
    };
    let checked = snp::check_svsm_launch(&launch);
    // Measured only when its sections are few pages: a section may span
    // 4 GiB, a million PAGE_INFO hashes, which would stall the fuzzer.
    let section_pages: u64 = image
        .sections
        .iter()
        .map(|s| u64::from(s.size) / 4096)
        .sum();
    if section_pages <= 64 {
        let pages = [[0x5A; 48]; 16];
        let measured = snp::svsm_launch_digest([0; 48], &pages, &launch);
        assert_eq!(checked.is_ok(), measured.is_ok());
    }
}

/// The fixed owner contexts the domain checks run with: plain SEV secure,
/// SEV-ES with a CPU signature, SEV-ES insecure with nothing given.
fn contexts() -> [Context; 3] {
    let base = Context {
        secure: true,
        owner_kernel: false,
        owner_firmware: true,
        policy: 0x1,
        vmsa: VmsaKind::None,
        num_cpus: None,
        host_signature: None,
    };
    [
        base.clone(),
        Context {
            policy: 0x5,
            vmsa: VmsaKind::Signature(0xA00F11),
            num_cpus: Some(4),
            host_signature: Some(0x830F10),
            owner_kernel: true,
            ..base.clone()
        },
        Context {
            secure: false,
            owner_firmware: false,
            policy: 0x7,
            num_cpus: Some(1),
            ..base
        },
    ]
}

/// Domain XML: parsed, every accessor called, checked with fixed contexts.
pub fn domain_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let d = match Domain::parse(text) {
        Ok(d) => d,
        Err(e) => {
            assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage);
            return;
        }
    };
    let _ = (d.sev(), d.kernel_hashes(), d.loader_path());
    let _ = (
        d.kernel(),
        d.initrd(),
        d.cmdline(),
        d.cpu_mode(),
        d.cpu_model(),
    );
    if let Err(e) = d.policy() {
        assert_eq!(e.exit_code(), ExitCode::IncorrectConfig);
    }
    if let Err(e) = d.vcpus() {
        assert_eq!(e.exit_code(), ExitCode::IncorrectConfig);
    }
    if let Some(model) = d.cpu_model() {
        let _ = cpu::named_model_signature(model);
    }
    for ctx in contexts() {
        if let Err(e) = check_domain(&d, &ctx) {
            assert!(!e.to_string().is_empty());
            assert_ne!(e.exit_code(), ExitCode::Ok);
            assert_ne!(e.exit_code(), ExitCode::Unexpected);
        }
    }
    snp_domain_xml(&d);
}

/// The SEV-SNP path of a domain: decoded (errors are configuration errors),
/// checked with fixed contexts, and its ID block judged.
fn snp_domain_xml(d: &Domain) {
    let _ = (d.snp(), d.is_snp());
    let s = match domain::decode(d) {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(e.exit_code(), ExitCode::IncorrectConfig, "{e}");
            return;
        }
    };
    for ctx in snp_contexts() {
        if let Err(e) = domain::check(d, &s, &ctx) {
            assert!(!e.to_string().is_empty());
            assert!(
                matches!(
                    e.exit_code(),
                    ExitCode::IncorrectConfig
                        | ExitCode::InsecureUsage
                        | ExitCode::UnsupportedUsage
                ),
                "{e}"
            );
        }
    }
    let keys = domain::IdKeys {
        trusted_id_keys: s.id_key_digest().into_iter().collect(),
        trusted_author_keys: vec![[1; 48]],
        require_author_key: true,
    };
    let checks = domain::prelaunch(&s, &[0; 48], &keys);
    assert_eq!(checks.is_some(), s.id_block.is_some());
    for c in checks.unwrap_or_default() {
        assert!(!c.message.is_empty(), "{}", c.name);
    }
}

fn snp_contexts() -> [domain::SnpContext; 3] {
    let base = domain::SnpContext {
        secure: true,
        owner_firmware: true,
        ..Default::default()
    };
    [
        base.clone(),
        domain::SnpContext {
            owner_kernel: true,
            owner_cmdline: Some("console=ttyS0".into()),
            owner_policy: Some(0x30000),
            num_cpus: Some(4),
            vcpu_signature: Some(0xA00F11),
            allow_debug: true,
            ..base.clone()
        },
        domain::SnpContext {
            secure: false,
            ignore_config: true,
            owner_firmware: false,
            allow_migrate_ma: true,
            ..base
        },
    ]
}

/// Capabilities XML: parsed, and the host CPU signature encoded.
pub fn capabilities_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(caps) = Capabilities::parse(text) else {
        return;
    };
    if let Some(s) = caps.signature() {
        if let Ok(sig) = cpu::signature(s.family, s.model, s.stepping) {
            assert_eq!(sig & 0xF, s.stepping);
        }
    }
}

/// The reported measurement (base64 of 48 bytes) and the key files.
pub fn measurement_keys(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Measurement::from_base64(&text) {
        let again = Measurement::from_base64(&m.to_base64()).expect("re-encoded measurement");
        assert_eq!(again, m);
    }
    match Measurement::from_bytes(data) {
        Some(m) => {
            assert_eq!(data.len(), measurement::MEASUREMENT_LEN);
            assert_eq!(&m.to_bytes()[..], data);
        }
        None => assert_ne!(data.len(), measurement::MEASUREMENT_LEN),
    }
    match keys::split_tk(data) {
        Some((tek, tik)) => {
            assert_eq!(data.len(), 2 * keys::KEY_LEN);
            assert_eq!(&tek.as_bytes()[..], &data[..keys::KEY_LEN]);
            assert_eq!(&tik.as_bytes()[..], &data[keys::KEY_LEN..]);
            // Debug never shows key bytes.
            assert_eq!(
                format!("{tik:?} {tek:?}"),
                "Tik(<redacted>) Tek(<redacted>)"
            );
        }
        None => assert_ne!(data.len(), 2 * keys::KEY_LEN),
    }
    assert_eq!(Tik::from_slice(data).is_some(), data.len() == keys::KEY_LEN);
    assert_eq!(Tek::from_slice(data).is_some(), data.len() == keys::KEY_LEN);
    if data.len() >= 64 {
        let a: [u8; 32] = data[..32].try_into().expect("32 bytes");
        let b: [u8; 32] = data[32..64].try_into().expect("32 bytes");
        assert_eq!(measurement::measures_equal(&a, &b), a == b);
    }
}

/// `--inject-secret ALIAS-OR-GUID:PATH`.
pub fn secret_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SecretSpec::parse(text) {
        Ok(spec) => {
            let (name, path) = text.split_once(':').expect("a parsed spec has ':'");
            assert!(!path.is_empty());
            assert_eq!(spec.path.as_os_str(), path);
            if name == "luks-key" {
                assert_eq!(spec.guid, guid::LUKS_KEY);
            } else {
                assert_eq!(Uuid::parse_str(name).ok(), Some(spec.guid));
            }
        }
        Err(e) => assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage),
    }
}

/// One line from a QMP monitor, and the measurement in a
/// `query-sev-launch-measure` reply.
pub fn qmp_message(data: &[u8]) {
    let _ = qmp::parse_message(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(m) = v
            .get("return")
            .and_then(|r| r.get("data"))
            .and_then(serde_json::Value::as_str)
        {
            let _ = Measurement::from_base64(m);
        }
    }
}

/// Decodes a plaintext secret table as OVMF and Linux `efi_secret` read it,
/// checking every length; the padding after the table must be zeros and
/// shorter than 16 bytes.
pub fn decode_secret_table(t: &[u8]) -> Result<Vec<(Uuid, Vec<u8>)>, String> {
    if t.len() < 20 {
        return Err(format!("{} bytes cannot hold the table header", t.len()));
    }
    if t[..16] != guid::SECRET_TABLE_HEADER.to_bytes_le() {
        return Err("wrong table header GUID".into());
    }
    let total = le_u32(&t[16..20]) as usize;
    if total < 20 || total > t.len() {
        return Err(format!("total length {total} outside 20..={}", t.len()));
    }
    if t.len() % 16 != 0 || t.len() - total >= 16 {
        return Err(format!("{} bytes is not {total} padded to 16", t.len()));
    }
    if t[total..].iter().any(|&b| b != 0) {
        return Err("padding is not zeros".into());
    }
    let mut entries = Vec::new();
    let mut at = 20;
    while at < total {
        if total - at < 20 {
            return Err(format!("entry at {at} is cut short"));
        }
        let g = Uuid::from_bytes_le(t[at..at + 16].try_into().expect("16 bytes"));
        let len = le_u32(&t[at + 16..at + 20]) as usize;
        if len < 20 || len > total - at {
            return Err(format!("entry at {at} has length {len}"));
        }
        entries.push((g, t[at + 20..at + len].to_vec()));
        at += len;
    }
    Ok(entries)
}

/// Reads `N` bytes from the front of `data`, or zeros past its end.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let k = data.len().min(N);
    out[..k].copy_from_slice(&data[..k]);
    *data = &data[k..];
    out
}

/// The input is TIK ‖ TEK ‖ MEASURE ‖ IV, then entries (16-byte GUID, u16
/// length, data). The table is built and decoded back; the packet decrypts
/// back under the TEK and its MAC verifies under the TIK.
pub fn secret_table(mut data: &[u8]) {
    let tik = Tik::from_slice(&take::<16>(&mut data)).expect("16 bytes");
    let tek = Tek::from_slice(&take::<16>(&mut data)).expect("16 bytes");
    let measure = take::<32>(&mut data);
    let iv = take::<16>(&mut data);
    let mut table = SecretTable::new();
    let mut expect: Vec<(Uuid, Vec<u8>)> = Vec::new();
    while data.len() >= 18 {
        let g = Uuid::from_bytes_le(take::<16>(&mut data));
        let len = le_u16(&take::<2>(&mut data)).min(data.len());
        let (d, rest) = data.split_at(len);
        data = rest;
        let dup = expect.iter().any(|(e, _)| *e == g);
        let added = table.add(g, Zeroizing::new(d.to_vec()));
        assert_eq!(added.is_err(), dup);
        if !dup {
            expect.push((g, d.to_vec()));
        }
    }
    assert_eq!(table.len(), expect.len());
    let unpadded = table.unpadded_len();
    let padded = table.padded_len();
    assert_eq!(padded % 16, 0);
    assert!(padded >= unpadded && padded - unpadded < 16);
    let plain = table.build().expect("a table under 4 GiB builds");
    assert_eq!(plain.len(), padded);
    assert_eq!(decode_secret_table(&plain), Ok(expect));

    let packet = secret::package(&tik, &tek, &measure, &plain, iv).expect("packet");
    assert_eq!(&packet.header[0..4], &[0, 0, 0, 0]);
    assert_eq!(&packet.header[4..20], &iv);
    let mut back = packet.payload.clone();
    ctr::Ctr128BE::<aes::Aes128>::new(tek.as_bytes().into(), &iv.into()).apply_keystream(&mut back);
    assert_eq!(&back[..], &plain[..]);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(tik.as_bytes()).expect("any key length");
    let len = (plain.len() as u32).to_le_bytes();
    for part in [
        &[0x01u8][..],
        &[0; 4],
        &iv,
        &len,
        &len,
        &packet.payload,
        &measure,
    ] {
        mac.update(part);
    }
    mac.verify_slice(&packet.header[20..52])
        .expect("the header MAC verifies under the TIK");
}

/// The input is a file given as an SEV-SNP report: the container is
/// detected, the report decoded, every accessor called, and the product,
/// the KDS URL and the TCB fields derived in every layout. A report that
/// decodes came from exactly 1184 bytes of the input; a cert table that
/// parses lies within it, and so does an HCL report's runtime data, whose
/// binding to REPORT_DATA is computed. The same bytes behind the HCL magic
/// take the Azure HCL path too.
pub fn snp_report(data: &[u8]) {
    snp_report_input(data);
    let mut hcl = snp_report::HCL_MAGIC.to_vec();
    hcl.extend_from_slice(data);
    snp_report_input(&hcl);
}

fn snp_report_input(data: &[u8]) {
    let input = match snp_report::parse_input(data) {
        Ok(i) => i,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let r = &input.report;
    assert!((2..=5).contains(&r.version));
    assert!(data.windows(REPORT_LEN).any(|w| w == &r.raw[..]));
    assert_eq!(r.signed_bytes().len(), 0x2A0);
    let _ = r.signature_rs();
    for (off, len) in r.nonzero_reserved() {
        assert!(off + len <= REPORT_LEN);
    }
    for p in Product::ALL {
        let _ = snp_report::kds_vcek_url(snp_report::KDS_BASE, p, r);
        for raw in [r.current_tcb, r.reported_tcb, r.committed_tcb, r.launch_tcb] {
            let t = snp_report::TcbVersion::decode(raw, p.tcb_layout());
            assert!(t.le_componentwise(&t));
        }
    }
    let _ = snp_report::resolve_product(r, None, None);
    if let Some(t) = &input.cert_table {
        let total: usize = t.entries.iter().map(|e| e.data.len()).sum();
        assert!(total <= data.len());
        for e in &t.entries {
            let _ = Certificate::from_der_or_pem(&e.data);
            let _ = Bundle::parse(&e.data);
        }
    }
    if let Some(h) = &input.hcl {
        assert!(h.runtime_data.len() <= data.len());
        let _ = h.binding(&r.report_data);
    }
}

/// The input is a GHCB certificate table. Parsed entries lie inside the
/// input, past the header, and do not overlap; each blob is then read as a
/// certificate (DER or PEM) without panicking. A table that parses is laid
/// out again and parses back to the same entries.
pub fn snp_cert_table(data: &[u8]) {
    let Ok(t) = CertTable::parse(data) else {
        return;
    };
    let header = 24 * (t.entries.len() + 1);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for e in &t.entries {
        let (o, l) = (e.offset as usize, e.data.len());
        assert!(o >= header && o + l <= data.len());
        assert_eq!(&data[o..o + l], &e.data[..]);
        if l > 0 {
            assert!(spans.iter().all(|&(so, se)| o + l <= so || se <= o));
            spans.push((o, o + l));
        }
        let _ = Certificate::from_der_or_pem(&e.data);
    }
    let mut again = vec![0u8; header];
    for (i, e) in t.entries.iter().enumerate() {
        let off = again.len() as u32;
        again[24 * i..24 * i + 16].copy_from_slice(e.guid.as_bytes());
        again[24 * i + 16..24 * i + 20].copy_from_slice(&off.to_le_bytes());
        again[24 * i + 20..24 * i + 24].copy_from_slice(&(e.data.len() as u32).to_le_bytes());
        again.extend_from_slice(&e.data);
    }
    let back = CertTable::parse(&again).expect("a laid-out table parses");
    assert_eq!(back.entries.len(), t.entries.len());
    for (a, b) in back.entries.iter().zip(&t.entries) {
        assert_eq!((a.guid, &a.data), (b.guid, &b.data));
    }
}

/// The input is a file given with `--crl` (DER or PEM) or a certificate
/// table's CRL blob. A CRL that parses keeps its signed bytes inside its DER,
/// has every listed serial found by `revocation_of` (leading zero bytes
/// added or not), reads back the same from its DER, and its signature check
/// against AMD's Milan ARK returns without panicking.
pub fn snp_crl(data: &[u8]) {
    let Ok(c) = Crl::from_der_or_pem(data) else {
        return;
    };
    assert!(c.tbs.len() < c.der.len());
    assert!(c.der.windows(c.tbs.len()).any(|w| w == c.tbs.as_slice()));
    for (serial, _) in &c.revoked {
        assert!(c.revocation_of(serial).is_some());
        let mut padded = vec![0u8];
        padded.extend_from_slice(serial);
        assert!(c.revocation_of(&padded).is_some());
    }
    let again = Crl::from_der(&c.der).expect("a parsed CRL's DER parses");
    assert_eq!(again.revoked, c.revoked);
    assert_eq!(again.tbs, c.tbs);
    let roots = pem_certificates(MILAN_ROOTS).expect("the built-in Milan roots");
    let ark = Certificate::from_der(&roots[1]).expect("the built-in Milan ARK");
    let _ = c.signed_by(&ark);
}

/// AMD's Milan ASK then ARK (the KDS cert_chain), built into the program.
const MILAN_ROOTS: &[u8] = include_bytes!("../../src/core/amd_roots/ask_ark_milan.pem");
/// The input is a key-release evidence file (JSON). Evidence that parses
/// has a 1184-byte report and a 97-byte public key on P-384, and is written
/// again to JSON that parses back to the same evidence.
pub fn snp_evidence(data: &[u8]) {
    let Ok(e) = Evidence::parse(data) else {
        return;
    };
    assert_eq!(e.report.len(), REPORT_LEN);
    snp_secret::check_public_key(&e.public_key).expect("a parsed key is on the curve");
    let back = Evidence::parse(e.to_json().as_bytes()).expect("written evidence parses");
    assert_eq!(back, e);
}

/// The input is a sealed file, and also the plaintext secret table inside
/// one. A file whose layout parses has the 193-byte aad before a ciphertext
/// of at least the tag; opening it with a fixed key fails cleanly (no one
/// sealed it to that key); a table that parses is built again to the same
/// bytes.
pub fn snp_sealed(data: &[u8]) {
    if let Ok(p) = sealed::parse(data) {
        assert_eq!(p.aad.len(), 96 + sealed::ENC_LEN);
        assert_eq!(&data[..p.aad.len()], p.aad);
        assert!(p.ciphertext.len() >= sealed::TAG_LEN);
        assert_eq!(p.aad.len() + 4 + p.ciphertext.len(), data.len());
        let mut scalar = [0u8; 48];
        scalar[47] = 7;
        let key = KeyPair::from_private_bytes(&scalar).expect("7 is a scalar");
        match snp_secret::open(data, &key) {
            Err(KeyReleaseError::NotForThisKey) | Err(KeyReleaseError::Malformed(_)) => {}
            other => panic!(
                "a file no one sealed to the fixed key: {:?}",
                other.map(|(h, _)| h)
            ),
        }
    }
    if let Ok(entries) = secret::parse_table(data) {
        let mut t = SecretTable::new();
        for (g, d) in entries {
            t.add(g, d).expect("parsed GUIDs are distinct");
        }
        assert_eq!(&t.build().expect("a parsed table builds")[..], data);
    }
}

/// One reply of a QEMU guest agent (`--guest-agent`), read by every parser
/// of the exchange: what a parser accepts is within its bounds (a pid in
/// i32, an exit code in 0..=255, no more bytes than asked and exactly the
/// count stated); every refusal is exit 9 (the protocol broken) or, for a
/// short write, exit 8, never a panic.
pub fn agent_reply(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let refused = |e: sev_validate::Error| {
        let c = e.exit_code();
        assert!(
            c == ExitCode::QmpProtocol || c == ExitCode::HostCall,
            "{c:?}: {e}"
        );
        assert!(!e.to_string().is_empty());
    };
    match agent::parse_exec(text) {
        Ok(pid) => assert!((0..=i64::from(i32::MAX)).contains(&pid)),
        Err(e) => refused(e),
    }
    match agent::parse_exec_status(text) {
        Ok(Some(x)) => {
            assert!(x.code.is_some() || x.signal.is_some());
            assert!(x
                .code
                .iter()
                .chain(&x.signal)
                .all(|c| (0..=255).contains(c)));
        }
        Ok(None) => {}
        Err(e) => refused(e),
    }
    match agent::parse_handle(text) {
        Ok(h) => assert!(h >= 0),
        Err(e) => refused(e),
    }
    for asked in [0, 5, 64] {
        match agent::parse_read(text, asked) {
            Ok((d, _)) => assert!(d.len() <= asked),
            Err(e) => refused(e),
        }
    }
    if let Err(e) = agent::parse_write(text, 5) {
        refused(e);
    }
    let shown = agent::shown(data);
    assert!(!shown
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t'));
}

/// CRC-32 (IEEE, as zlib and the IGVM fixed header use it), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An IGVM file (`snp-digest --igvm`), parsed as given and again with its
/// fixed header's checksum made right for its variable headers: the parser
/// checks the CRC-32 before it reads any directive, which the fuzzer would
/// otherwise almost never get past. A file that parses lays out within
/// bounds, its VMSAs one per vCPU in vCPU order, and its findings agree
/// with the launch (an ID block for another digest, no VMSA).
pub fn igvm_file(data: &[u8]) {
    igvm_launch(data);
    if data.len() < 24 {
        return;
    }
    let (offset, size) = (le_u32(&data[8..]) as usize, le_u32(&data[12..]) as usize);
    let Some(variable) = offset
        .checked_add(size)
        .and_then(|end| data.get(offset..end))
    else {
        return;
    };
    let mut fixed = data[..24].to_vec();
    fixed[20..24].fill(0);
    fixed.extend_from_slice(variable);
    let mut fixed_up = data.to_vec();
    fixed_up[20..24].copy_from_slice(&crc32(&fixed).to_le_bytes());
    igvm_launch(&fixed_up);
}

/// Through `snp::igvm::parse`, as `snp-digest --igvm` does: the igvm
/// crate's own panics (it has some on malformed files) become an error
/// there, and any other panic still ends the run.
fn igvm_launch(data: &[u8]) {
    let launch: IgvmLaunch = match snp_igvm::parse(data) {
        Ok(l) => l,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let ld = launch.launch_digest();
    assert_eq!(ld, launch.launch_digest());
    assert!(launch.pages.len() as u64 <= MAX_MEASURED_PAGES);
    assert!(launch
        .vmsas
        .windows(2)
        .all(|w| w[0].vp_index < w[1].vp_index));
    assert_eq!(
        launch.vmsas.is_empty(),
        launch.findings.contains(&Finding::NoVmsa)
    );
    let differs = launch
        .findings
        .iter()
        .any(|f| matches!(f, Finding::IdBlockDigest { .. }));
    assert_eq!(launch.id_block_matches(&ld) == Some(false), differs);
    for f in &launch.findings {
        assert!(!f.to_string().is_empty());
    }
}
