//! Properties of the pure core over arbitrary inputs:
//!
//! - a launch measurement over any firmware, kernel hashes table, VMSAs,
//!   policy, API version, build, nonce and TIK verifies against itself, and
//!   stops verifying after any one-bit change of any one input;
//! - a secret table always decodes back to what was packed (the decoder is
//!   here, written from the format, not from the packer), is padded to the
//!   next multiple of 16 only, and its LAUNCH_SECRET packet decrypts back
//!   under the TEK and carries a MAC that verifies under the TIK;
//! - no vCPU count makes `launch::compute_ld` panic: 0 and more than 512 are
//!   errors, 1 to 512 are measured as that many VMSAs;
//! - no firmware size or tail makes the loader or the footer parser panic;
//! - the SNP "OVMF hash" is the same chain of PAGE_INFO digests (written here
//!   from measurement.md §6) whatever the image size, the number of hashing
//!   threads and how the reader splits its reads, and a short image is an
//!   error that says where it ended.
//!
//! Case counts keep the whole file well under 20 s in a debug build.

use std::io::Write;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::{Digest, Sha256, Sha384};
use uuid::Uuid;
use zeroize::Zeroizing;

use sev_validate::core::guid;
use sev_validate::core::kernel_hashes::KernelHashes;
use sev_validate::core::keys::{Tek, Tik};
use sev_validate::core::measurement::{self, LaunchDigest, LaunchInfo, Measurement};
use sev_validate::core::ovmf::{self, FooterTable};
use sev_validate::core::secret::{self, SecretTable};
use sev_validate::core::snp::{self, GuestContext, SnpError};
use sev_validate::core::vmsa::VMSA_LEN;
use sev_validate::input;
use sev_validate::sev::launch::{self, Firmware, VmsaSource, MAX_VCPUS};
use sev_validate::ExitCode;

// ------------------------------------------------------------ measurement --

/// Everything a LAUNCH_MEASURE value depends on.
#[derive(Debug, Clone)]
struct Launch {
    firmware: Vec<u8>,
    kernel: Option<[[u8; 32]; 3]>,
    /// SEV-ES: the boot CPU's VMSA, the other vCPUs' VMSA and the vCPU count.
    vmsa: Option<(Vec<u8>, Vec<u8>, u32)>,
    info: [u8; 3],
    policy: u32,
    nonce: [u8; 16],
    tik: [u8; 16],
}

fn page(v: &[u8]) -> Box<[u8; VMSA_LEN]> {
    Box::new(v.try_into().expect("a VMSA page"))
}

impl Launch {
    /// MEASURE, through the same functions the tool uses.
    fn measure(&self) -> [u8; 32] {
        let firmware = Firmware {
            digest_after_firmware: LaunchDigest::from_firmware(&self.firmware[..]).unwrap(),
            footer: None,
            len: self.firmware.len() as u64,
        };
        let kernel = self.kernel.map(|[kernel, initrd, cmdline]| KernelHashes {
            kernel,
            initrd,
            cmdline,
        });
        let source = self.vmsa.as_ref().map(|(bsp, ap, n)| {
            (
                VmsaSource::Pages {
                    bsp: page(bsp),
                    ap: Some(page(ap)),
                },
                *n,
            )
        });
        let trace = launch::compute_ld(
            &firmware,
            kernel.as_ref(),
            source.as_ref().map(|(s, n)| (s, *n)),
        )
        .unwrap();
        let info = LaunchInfo {
            api_major: self.info[0],
            api_minor: self.info[1],
            build_id: self.info[2],
            policy: self.policy,
        };
        measurement::compute_measure(
            &Tik::from_slice(&self.tik).unwrap(),
            &info,
            &trace.ld,
            &self.nonce,
        )
    }

    /// The bits of every input that the measurement covers, as (input, length
    /// in bits). The other vCPUs' VMSA counts only with more than one vCPU.
    fn inputs(&self) -> Vec<(&'static str, usize)> {
        let mut v = vec![
            ("firmware", self.firmware.len() * 8),
            ("kernel table", self.kernel.map_or(0, |_| 3 * 256)),
            ("api/build", 24),
            ("policy", 32),
            ("nonce", 128),
            ("tik", 128),
        ];
        if let Some((_, _, n)) = &self.vmsa {
            v.push(("vmsa cpu0", VMSA_LEN * 8));
            if *n > 1 {
                v.push(("vmsa cpu1", VMSA_LEN * 8));
            }
        }
        v
    }

    /// This launch with bit `bit` of input `which` flipped.
    fn flipped(&self, which: &str, bit: usize) -> Launch {
        let mut l = self.clone();
        let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
        match which {
            "firmware" => l.firmware[byte] ^= mask,
            "kernel table" => l.kernel.as_mut().unwrap()[byte / 32][byte % 32] ^= mask,
            "api/build" => l.info[byte] ^= mask,
            "policy" => l.policy ^= 1 << bit,
            "nonce" => l.nonce[byte] ^= mask,
            "tik" => l.tik[byte] ^= mask,
            "vmsa cpu0" => l.vmsa.as_mut().unwrap().0[byte] ^= mask,
            "vmsa cpu1" => l.vmsa.as_mut().unwrap().1[byte] ^= mask,
            _ => unreachable!("{which}"),
        }
        l
    }
}

fn launches() -> impl Strategy<Value = Launch> {
    (
        prop::collection::vec(any::<u8>(), 0..2048),
        prop::option::of(any::<[[u8; 32]; 3]>()),
        prop::option::of((
            prop::collection::vec(any::<u8>(), VMSA_LEN),
            prop::collection::vec(any::<u8>(), VMSA_LEN),
            1u32..=6,
        )),
        any::<[u8; 3]>(),
        any::<u32>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(firmware, kernel, vmsa, info, policy, nonce, tik)| Launch {
                firmware,
                kernel,
                vmsa,
                info,
                policy,
                nonce,
                tik,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_measurement_verifies_against_itself_and_not_after_any_bit_flip(
        l in launches(),
        pick in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let m = l.measure();
        prop_assert!(measurement::measures_equal(&m, &l.measure()));
        // The 48-byte blob the host reports survives its base64 round trip.
        let reported = Measurement { measure: m, mnonce: l.nonce };
        let back = Measurement::from_base64(&reported.to_base64()).unwrap();
        prop_assert!(measurement::measures_equal(&back.measure, &m));
        prop_assert_eq!(back.mnonce, l.nonce);

        let inputs: Vec<_> = l.inputs().into_iter().filter(|(_, bits)| *bits > 0).collect();
        let (which, bits) = inputs[pick.index(inputs.len())];
        let other = l.flipped(which, bit.index(bits));
        prop_assert!(
            !measurement::measures_equal(&m, &other.measure()),
            "flipping a bit of the {} left the measurement unchanged", which
        );
    }

    #[test]
    fn the_vcpu_count_the_guest_runs_with_is_measured(l in launches(), grow in any::<bool>()) {
        let Some((bsp, ap, n)) = l.vmsa.clone() else { return Ok(()) };
        let n2 = if grow || n == 1 { n + 1 } else { n - 1 };
        let other = Launch { vmsa: Some((bsp, ap, n2)), ..l.clone() };
        prop_assert!(!measurement::measures_equal(&l.measure(), &other.measure()));
    }
}

// ----------------------------------------------------------------- secrets --

/// Reads the plaintext secret table as OVMF and Linux `efi_secret` do:
/// header GUID, u32 total length, then entries of GUID, u32 length (header
/// included) and data, up to the total length; zeros pad the rest.
fn decode_table(t: &[u8]) -> Vec<(Uuid, Vec<u8>)> {
    let u32_at = |at: usize| u32::from_le_bytes(t[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(&t[..16], &guid::SECRET_TABLE_HEADER.to_bytes_le()[..]);
    let total = u32_at(16);
    assert!(total <= t.len(), "total {total} > {}", t.len());
    assert!(t[total..].iter().all(|&b| b == 0), "padding is not zeros");
    let mut out = Vec::new();
    let mut at = 20;
    while at < total {
        let g = Uuid::from_bytes_le(t[at..at + 16].try_into().unwrap());
        let len = u32_at(at + 16);
        assert!(
            len >= 20 && at + len <= total,
            "entry at {at}: length {len}"
        );
        out.push((g, t[at + 20..at + len].to_vec()));
        at += len;
    }
    assert_eq!(at, total);
    out
}

fn entries() -> impl Strategy<Value = Vec<(Uuid, Vec<u8>)>> {
    prop::collection::vec(
        (
            any::<[u8; 16]>(),
            prop::collection::vec(any::<u8>(), 0..600),
        ),
        0..8,
    )
    .prop_map(|v| {
        let mut seen = Vec::new();
        v.into_iter()
            .map(|(g, d)| (Uuid::from_bytes(g), d))
            .filter(|(g, _)| {
                let new = !seen.contains(g);
                seen.push(*g);
                new
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn secret_tables_decode_back_and_packets_decrypt_back(
        entries in entries(),
        tik in any::<[u8; 16]>(),
        tek in any::<[u8; 16]>(),
        measure in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
    ) {
        let mut table = SecretTable::new();
        for (g, d) in &entries {
            table.add(*g, Zeroizing::new(d.clone())).unwrap();
            // A GUID may appear once.
            prop_assert!(table.add(*g, Zeroizing::new(vec![])).is_err());
        }
        let unpadded = 20 + entries.iter().map(|(_, d)| 20 + d.len()).sum::<usize>();
        prop_assert_eq!(table.unpadded_len(), unpadded);
        let plain = table.build().unwrap();
        // Padded to the next multiple of 16, never a whole extra block.
        prop_assert_eq!(plain.len(), table.padded_len());
        prop_assert_eq!(plain.len() % 16, 0);
        prop_assert!(plain.len() >= unpadded && plain.len() - unpadded < 16);
        prop_assert_eq!(&plain[16..20], &(unpadded as u32).to_le_bytes()[..]);
        prop_assert_eq!(decode_table(&plain), entries);

        let (tik, tek) = (Tik::from_slice(&tik).unwrap(), Tek::from_slice(&tek).unwrap());
        let p = secret::package(&tik, &tek, &measure, &plain, iv).unwrap();
        prop_assert_eq!(p.payload.len(), plain.len());
        prop_assert_eq!(&p.header[..4], &[0u8; 4][..]);
        prop_assert_eq!(&p.header[4..20], &iv[..]);
        let mut back = p.payload.clone();
        ctr::Ctr128BE::<aes::Aes128>::new(tek.as_bytes().into(), &iv.into())
            .apply_keystream(&mut back);
        prop_assert_eq!(&back[..], &plain[..]);
        // SEV API §6.6: HMAC(TIK, 0x01 ‖ FLAGS ‖ IV ‖ GUEST_LENGTH ‖ TRANS_LENGTH ‖ DATA ‖ MEASURE).
        let len = (plain.len() as u32).to_le_bytes();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(tik.as_bytes()).unwrap();
        for part in [&[1u8][..], &[0; 4], &iv, &len, &len, &p.payload, &measure] {
            mac.update(part);
        }
        prop_assert!(mac.verify_slice(&p.header[20..]).is_ok());
    }
}

// ------------------------------------------------------ counts and sizes --

fn one_byte_firmware() -> Firmware {
    Firmware {
        digest_after_firmware: LaunchDigest::from_firmware(&[0u8][..]).unwrap(),
        footer: None,
        len: 1,
    }
}

fn pages(ap: bool) -> VmsaSource {
    VmsaSource::Pages {
        bsp: Box::new([1; VMSA_LEN]),
        ap: ap.then(|| Box::new([2; VMSA_LEN])),
    }
}

/// LD over the firmware and `n` VMSAs, written out here.
fn expected_ld(n: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update([1; VMSA_LEN]);
    for _ in 1..n {
        h.update([2; VMSA_LEN]);
    }
    h.finalize().into()
}

#[test]
fn vcpu_count_boundaries() {
    let fw = one_byte_firmware();
    for n in [1, 2, MAX_VCPUS] {
        let t = launch::compute_ld(&fw, None, Some((&pages(true), n))).unwrap();
        assert_eq!(t.ld, expected_ld(n), "{n} vCPUs");
    }
    for n in [0, MAX_VCPUS + 1, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
        let Err(e) = launch::compute_ld(&fw, None, Some((&pages(true), n))) else {
            panic!("{n} vCPUs accepted");
        };
        assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage);
        assert!(e.to_string().contains("between 1 and 512"), "{n}: {e}");
    }
    // One vCPU needs no page for the others; two do.
    assert!(launch::compute_ld(&fw, None, Some((&pages(false), 1))).is_ok());
    let Err(e) = launch::compute_ld(&fw, None, Some((&pages(false), 2))) else {
        panic!("two vCPUs without a page for the second accepted");
    };
    assert!(e.to_string().contains("--vmsa-cpu1"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_vcpu_count_panics(n in any::<u32>(), ap in any::<bool>()) {
        // Counts above the limit are refused before any page is hashed, so
        // this is cheap for every u32; counts within it hash n pages.
        let n = if n % 4 == 0 { n % (MAX_VCPUS + 2) } else { n };
        match launch::compute_ld(&one_byte_firmware(), None, Some((&pages(ap), n))) {
            Ok(t) => {
                prop_assert!((1..=MAX_VCPUS).contains(&n) && (ap || n == 1));
                prop_assert_eq!(t.ld, expected_ld(n));
            }
            Err(e) => {
                prop_assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage);
                prop_assert!(n == 0 || n > MAX_VCPUS || (!ap && n > 1));
            }
        }
    }

    #[test]
    fn no_firmware_tail_panics_the_footer_parser(
        tail in prop::collection::vec(any::<u8>(), 0..4096),
        offset in any::<u32>(),
    ) {
        if let Ok(Some(t)) = FooterTable::parse(&tail) {
            let _ = (t.sev_es_reset_addr(), t.secret_area(), t.kernel_hash_area());
            if let Ok(Some(off)) = t.sev_metadata_offset() {
                let _ = ovmf::parse_sev_metadata(&tail, off);
            }
        }
        let _ = ovmf::parse_sev_metadata(&tail, offset);
        let _ = ovmf::parse_sev_metadata(&tail, offset % (tail.len() as u32 + 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any file size: small files are read and parsed, files over 64 MiB
    /// (sparse here, up to 2^40 bytes) are refused from their size alone.
    #[test]
    fn no_firmware_size_panics_the_loader(
        small in prop::collection::vec(any::<u8>(), 0..70_000),
        big in (input::MAX_FIRMWARE_LEN + 1)..(1u64 << 40),
        use_big in any::<bool>(),
        plant_footer in any::<bool>(),
    ) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        if use_big {
            if f.as_file().set_len(big).is_err() {
                return Ok(()); // the file system has no room for such a sparse file
            }
        } else {
            let mut small = small.clone();
            let n = small.len();
            if plant_footer && n >= 50 {
                // A footer GUID, so that the table length and entries are parsed.
                small[n - 48..n - 32].copy_from_slice(&guid::OVMF_TABLE_FOOTER.to_bytes_le());
            }
            f.write_all(&small).unwrap();
        }
        match Firmware::load(f.path()) {
            Ok(fw) => {
                prop_assert!(!use_big);
                let written = std::fs::read(f.path()).unwrap();
                prop_assert_eq!(fw.len, written.len() as u64);
                let d: [u8; 32] = Sha256::digest(&written).into();
                prop_assert_eq!(fw.digest_after_firmware.firmware_digest(), Some(d));
            }
            Err(e) => {
                prop_assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage);
                let msg = e.to_string();
                if use_big {
                    prop_assert!(msg.contains("so this is not a firmware image"), "{}", msg);
                } else {
                    prop_assert!(small.is_empty() || msg.contains("OVMF footer"), "{}", msg);
                }
            }
        }
    }
}

// ------------------------------------------------------ SNP firmware pages --

/// The launch digest after `image` is measured as NORMAL pages ending at
/// 4 GiB, straight from the PAGE_INFO layout (measurement.md §6).
fn spec_ovmf_hash(image: &[u8]) -> [u8; 48] {
    let mut ld = [0u8; 48];
    let base = (1u64 << 32) - image.len() as u64;
    for (i, page) in image.chunks(4096).enumerate() {
        let mut info = [0u8; 0x70];
        info[..0x30].copy_from_slice(&ld);
        info[0x30..0x60].copy_from_slice(&Sha384::digest(page));
        info[0x60..0x62].copy_from_slice(&0x70u16.to_le_bytes());
        info[0x62] = 1; // NORMAL
        info[0x68..].copy_from_slice(&(base + 4096 * i as u64).to_le_bytes());
        ld = Sha384::digest(info).into();
    }
    ld
}

/// A reader that hands out at most `step` bytes per read.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn snp_firmware_pages_chain_the_same_on_any_number_of_threads(
        pages in 1usize..400,
        seed in any::<u8>(),
        threads in 0usize..6,
        step in 1usize..20_000,
        cut in any::<prop::sample::Index>(),
    ) {
        let image: Vec<u8> = (0..pages * 4096)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 12) as u8)
            .collect();
        let len = image.len() as u64;
        let want = spec_ovmf_hash(&image);
        let mut gctx = GuestContext::new();
        snp::measure_firmware_on(&mut gctx, Dribble { data: &image, step }, len, threads).unwrap();
        prop_assert_eq!(gctx.ld(), want);

        let short = cut.index(image.len());
        let err = snp::measure_firmware_on(
            &mut GuestContext::new(),
            Dribble { data: &image[..short], step },
            len,
            threads,
        )
        .unwrap_err();
        prop_assert!(
            matches!(err, SnpError::FirmwareTruncated { read, len: l } if read == short as u64 && l == len),
            "{err:?}"
        );
    }
}
