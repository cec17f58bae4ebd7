//! virt-qemu-sev-validate: prove that an AMD SEV, SEV-ES or SEV-SNP virtual
//! machine, launched by a host the guest owner does not trust, holds exactly
//! the firmware, kernel, initrd, command line and vCPU state the owner
//! expects, and only then release secrets to it.
//!
//! The library is laid out as the validation is:
//!
//! - [`core`]: formats and cryptography, no I/O: SEV launch digests and
//!   LAUNCH_MEASURE, VMSAs, OVMF footer tables, LAUNCH_SECRET packets, the
//!   SEV-SNP launch digest, ID blocks, attestation reports and AMD's
//!   certificates;
//! - [`source`]: where launch state comes from (offline values, libvirt,
//!   QEMU's QMP monitor, AMD's KDS) and the domain XML;
//! - [`sev`]: the SEV and SEV-ES stages: [`sev::resolve`], [`sev::checks`],
//!   [`sev::validate`], [`sev::explain`], [`sev::secrets`];
//! - [`snp`]: the SEV-SNP stages: [`snp::digest`], [`snp::domain`],
//!   [`snp::validate`], [`snp::attest`], [`snp::explain`], [`snp::run`];
//! - [`generation`]: which of the two the owner expects (the host never
//!   chooses); [`input`]: the owner's files, read within limits;
//!   [`provenance`]: who gave each value; [`report`]: the `--json` document;
//!   [`Error`] and its [`ExitCode`].
//!
//! Cargo features: `libvirt` (the libvirt source), `ssh` (comparing the
//! host's files over SFTP) and `kds` (fetching VCEKs from AMD's KDS), all on
//! by default; with `default-features = false` the library needs neither
//! libvirt nor libssh2.
//!
//! # Examples
//!
//! The examples run on small fixtures shipped with the crate
//! (`tests/fixtures/`, made by `scripts/make-doc-fixtures.py`); every
//! expected value in them comes from another implementation, named beside
//! it.
//!
//! An SEV launch measured offline: the launch digest of the firmware and
//! LAUNCH_MEASURE under the TIK (the value is Python's `hmac` over the
//! SEV API's message):
//!
//! ```
//! use sev_validate::core::keys::Tik;
//! use sev_validate::core::measurement::{compute_measure, LaunchDigest, LaunchInfo};
//!
//! let firmware: &[u8] = include_bytes!("../tests/fixtures/ovmf-snp-4k.bin");
//! let ld = LaunchDigest::from_firmware(firmware)?.finalize();
//! let info = LaunchInfo { api_major: 1, api_minor: 51, build_id: 3, policy: 0x1 };
//! let tik = Tik::from_slice(&[0x11; 16]).unwrap();
//! let measure = compute_measure(&tik, &info, &ld, &[0x22; 16]);
//! assert_eq!(
//!     hex::encode(measure),
//!     "8b36acca54a314cba1759117a20e8d99029a52365a918242712b1a2a523a852e"
//! );
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The SEV-SNP launch digest (the report's MEASUREMENT) of a firmware and one
//! EPYC-Milan vCPU, as sev-snp-measure 0.0.13 computes it:
//!
//! ```
//! use sev_validate::core::vmsa::{VmmType, VmsaForm};
//! use sev_validate::snp::digest::{self, DigestInput};
//!
//! let launch = digest::compute(&DigestInput {
//!     ovmf: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ovmf-snp-4k.bin").into(),
//!     ovmf_hash: None,
//!     vcpus: 1,
//!     vcpu_signature: Some(0xA00F11), // EPYC-Milan: family 25, model 1, stepping 1
//!     vmm: VmmType::Qemu,
//!     vmsa_form: VmsaForm::Init2,
//!     guest_features: 0x1,
//!     kernel: None,
//!     initrd: None,
//!     append: None,
//! })?;
//! assert_eq!(
//!     hex::encode(launch.ld),
//!     "b7f8eb1b4b5dacd68fd17b207b102071f7bb69bf84153b0b7ed9293fe14948566ccbcd8250e6bad5ee89742e53d1ae29"
//! );
//! # Ok::<(), sev_validate::Error>(())
//! ```
//!
//! An SEV-SNP attestation report read from the bytes the guest obtained (here
//! one signed by the test chain of the simulated SNP firmware,
//! `tests/sim/snp_sp.py`):
//!
//! ```
//! use sev_validate::core::snp_report::{self, SigningKey};
//!
//! let input = snp_report::parse_input(include_bytes!("../tests/fixtures/snp-sim/report.bin"))?;
//! let report = &input.report;
//! assert_eq!(report.version, 3);
//! assert_eq!(report.key_info.signing_key, SigningKey::Vcek);
//! assert!(report.report_data.starts_with(b"virt-qemu-sev-validate example nonce"));
//! assert_eq!(&hex::encode(report.measurement)[..16], "b7f8eb1b4b5dacd6");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same report validated against its VCEK and trust anchors: with the
//! test chain it passes every check, and with AMD's built-in roots the chain
//! fails (the simulator's own `check` gives the same verdicts):
//!
//! ```
//! use sev_validate::core::snp_cert::{Certificate, TrustAnchors};
//! use sev_validate::core::snp_report::{self, Product};
//! use sev_validate::snp::validate::{Endorsement, Expectations, Validator};
//!
//! let input = snp_report::parse_input(include_bytes!("../tests/fixtures/snp-sim/report.bin"))?;
//! let vek = Certificate::from_der_or_pem(include_bytes!("../tests/fixtures/snp-sim/vcek.der"))?;
//! let anchors = TrustAnchors::from_files(&[
//!     include_bytes!("../tests/fixtures/snp-sim/ark.pem").to_vec(),
//!     include_bytes!("../tests/fixtures/snp-sim/ask.pem").to_vec(),
//! ])?;
//! let endorsement = Endorsement { vek, ask: None, ark: None };
//! let mut expect = Expectations::default();
//! expect.report_data = Some(input.report.report_data); // the nonce the owner sent
//! expect.measurement = Some(input.report.measurement); // the expected launch digest
//! let now = 1_780_272_000; // 2026-06-01: inside the VCEK's validity
//! let outcome = Validator::new(&anchors, now)
//!     .validate(&input.report, Product::Milan, &endorsement, &expect);
//! assert!(outcome.passed(), "{:?}", outcome.failures().collect::<Vec<_>>());
//! let amd = Validator::new(TrustAnchors::builtin(), now)
//!     .validate(&input.report, Product::Milan, &endorsement, &expect);
//! assert!(amd.failures().any(|c| c.name.starts_with("chain.")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An ID block for an expected launch digest, signed with the owner's ID and
//! author keys; the key digests the report will carry are those
//! sev-snp-measure's `snp-create-id-block` prints for the same keys:
//!
//! ```
//! use sev_validate::core::id_block::SnpKey;
//! use sev_validate::snp::id_block::{self, IdBlockFields};
//!
//! let id_key = SnpKey::from_pem(include_str!("../tests/fixtures/id-key.pem"))?;
//! let author_key = SnpKey::from_pem(include_str!("../tests/fixtures/author-key.pem"))?;
//! let ld = [0xB7; 48];
//! let fields = IdBlockFields { policy: 0x30000, ..IdBlockFields::default() };
//! let (block, auth) = id_block::sign(ld, &fields, &id_key, Some(&author_key))?;
//! assert_eq!(block.ld, ld);
//! auth.verify(&block)?;
//! assert_eq!(
//!     hex::encode(id_key.public_key_digest()),
//!     "d004c8087268e6d7e3ed3d7a259899ed8319a126dc1b78d14041437dfe87ec9da4c130b63eafd821bbc149e31e5211dc"
//! );
//! assert_eq!(
//!     hex::encode(author_key.public_key_digest()),
//!     "84c6b36e171d6d0a729250031d53d20c40acd0defd940d52b17ee1c558278da6f19fbe2bb6263719af0b33be5c55d4f8"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An SEV-SNP domain's launch security element checked before the guest
//! starts: a policy with DEBUG set is refused unless the owner allows it
//! (exit status 3, the `--insecure` class):
//!
//! ```
//! use sev_validate::snp::domain::{self, SnpContext};
//! use sev_validate::source::xml::Domain;
//!
//! let xml = "<domain type='kvm'><name>guest</name><vcpu>1</vcpu>
//!   <os><type arch='x86_64' machine='q35'>hvm</type>
//!     <loader readonly='yes' type='rom'>/usr/share/ovmf/OVMF.fd</loader></os>
//!   <launchSecurity type='sev-snp'><policy>0x000b0000</policy></launchSecurity>
//! </domain>";
//! let d = Domain::parse(xml)?;
//! let snp = domain::decode(&d)?;
//! assert_eq!(snp.policy, 0xB0000);
//! let owner = SnpContext { secure: true, owner_firmware: true, ..SnpContext::default() };
//! let finding = domain::check(&d, &snp, &owner).unwrap_err();
//! assert_eq!(finding.exit_code() as i32, 3);
//! assert!(finding.to_string().contains("DEBUG (bit 19)"));
//! let debuggable = SnpContext { allow_debug: true, ..owner };
//! domain::check(&d, &snp, &debuggable)?;
//! # Ok::<(), sev_validate::Error>(())
//! ```
//!
//! One validation through QEMU's monitor, stage by stage:
//!
//! ```no_run
//! # fn main() -> Result<(), sev_validate::Error> {
//! use sev_validate::core::keys::{Tek, Tik};
//! use sev_validate::core::vmsa::VmsaForm;
//! use sev_validate::sev::policy::Requirements;
//! use sev_validate::sev::resolve::{self, Keys, Options, OwnerInputs, VmsaInput};
//! use sev_validate::source::{self, Given, QmpSpec, SourceSpec};
//! use sev_validate::sev::validate::{validate, Verdict};
//!
//! let spec = SourceSpec::Qmp(QmpSpec {
//!     endpoint: "host.example:4444".into(),
//!     timeout: std::time::Duration::from_secs(10),
//!     insecure: false,
//!     resume: true,
//!     secret_address: None,
//! });
//! let mut src = source::open(&spec)?;
//! let host = src.host_report(&Given::default())?;
//! let owner = OwnerInputs {
//!     firmware: Some("OVMF.amdsev.fd".into()),
//!     kernel: None,
//!     initrd: None,
//!     cmdline: None,
//!     num_cpus: None,
//!     vmsa: VmsaInput::None,
//!     vmsa_form: VmsaForm::Legacy,
//!     sev_features: 0,
//! };
//! let policy = host.launch.info.policy;
//! let resolved = resolve::resolve(&owner, &host.facts, policy, Options::default())?;
//! let keys = Keys {
//!     tik: Tik::from_slice(&std::fs::read("tik.bin").unwrap()).expect("16 bytes"),
//!     tek: Tek::from_slice(&std::fs::read("tek.bin").unwrap()).expect("16 bytes"),
//!     from_tk_file: false,
//! };
//! let expected = resolved.load(keys, policy)?;
//! let outcome = validate(&expected, &host.launch, &Requirements::default())?;
//! if outcome.verdict == Verdict::Validated {
//!     // Only now package secrets (sev_validate::sev::secrets) and inject them.
//! }
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]

#[doc(hidden)]
pub mod cli;
pub mod core;
pub mod error;
pub mod generation;
pub mod input;
pub mod provenance;
pub mod report;
pub mod sev;
pub mod snp;
pub mod source;

pub use error::{Error, ExitCode, Result};
pub use generation::Generation;
