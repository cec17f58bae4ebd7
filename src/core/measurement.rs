//! GCTX.LD and the SEV LAUNCH_MEASURE value.
//!
//! LD is one running SHA-256 over every LAUNCH_UPDATE_DATA region (the
//! firmware, then the kernel hashes table) and every LAUNCH_UPDATE_VMSA page.
//! The state after the firmware is kept so that many variants of one launch
//! can be evaluated without hashing the firmware again.

use std::io::{self, Read};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::keys::Tik;

/// Length of the LAUNCH_MEASURE blob: MEASURE ‖ MNONCE.
pub const MEASUREMENT_LEN: usize = 48;

/// Hands everything `reader` yields to `consume` in fixed-size chunks, so a
/// file of any size costs the same memory. Returns the byte count.
pub fn stream<R: Read>(mut reader: R, mut consume: impl FnMut(&[u8])) -> io::Result<u64> {
    // 64 KiB: large enough for full hashing speed, small enough that three
    // concurrent hashers stay far below the memory budget.
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        consume(&buf[..n]);
        total += n as u64;
    }
}

/// SHA-256 of everything `reader` yields, streamed.
pub fn sha256_reader<R: Read>(reader: R) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    stream(reader, |chunk| h.update(chunk))?;
    Ok(h.finalize().into())
}

/// The launch digest in progress. Clone it to branch a computation.
#[derive(Clone, Default)]
pub struct LaunchDigest {
    state: Sha256,
    firmware: Option<[u8; 32]>,
}

impl LaunchDigest {
    /// A launch digest after measuring the firmware image that `reader` yields.
    pub fn from_firmware<R: Read>(reader: R) -> io::Result<LaunchDigest> {
        let mut state = Sha256::new();
        stream(reader, |chunk| state.update(chunk))?;
        // The LD state and the firmware's own digest (for --debug and
        // diagnostics) are the same hash so far: finish a copy of it.
        let firmware = state.clone().finalize().into();
        Ok(LaunchDigest {
            state,
            firmware: Some(firmware),
        })
    }

    /// SHA-256 of the firmware alone.
    pub fn firmware_digest(&self) -> Option<[u8; 32]> {
        self.firmware
    }

    /// Measures the padded kernel hashes table (LAUNCH_UPDATE_DATA).
    pub fn update_kernel_hashes(&mut self, table: &[u8; super::kernel_hashes::PADDED_TABLE_LEN]) {
        self.state.update(table);
    }

    /// Measures one VMSA page (LAUNCH_UPDATE_VMSA).
    pub fn update_vmsa(&mut self, vmsa: &[u8; super::vmsa::VMSA_LEN]) {
        self.state.update(vmsa);
    }

    /// GCTX.LD.
    pub fn finalize(self) -> [u8; 32] {
        self.state.finalize().into()
    }
}

/// The platform values the SEV firmware mixes into MEASURE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchInfo {
    /// API_MAJOR from PLATFORM_STATUS (`query-sev` `api-major`, libvirt `sev-api-major`).
    pub api_major: u8,
    /// API_MINOR from PLATFORM_STATUS (`query-sev` `api-minor`, libvirt `sev-api-minor`).
    pub api_minor: u8,
    /// BUILD from PLATFORM_STATUS (`query-sev` `build-id`, libvirt `sev-build-id`).
    pub build_id: u8,
    /// GCTX.POLICY: the guest policy given to LAUNCH_START (SEV API §3, Table 2).
    pub policy: u32,
}

/// Why a reported measurement cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasurementError {
    /// The value is not standard base64.
    #[error("the measurement '{text}' is not valid base64 ({reason})")]
    NotBase64 {
        /// The value as given.
        text: String,
        /// The base64 decoder's message.
        reason: String,
    },
    /// More than one line was given (a whole `virsh domlaunchsecinfo` output).
    #[error(
        "the measurement '{text}' has more than one line; give only the base64 after 'sev-measurement:' (one line of 'virsh domlaunchsecinfo', or that line alone)"
    )]
    SeveralLines {
        /// The value as given.
        text: String,
    },
    /// A `name:` prefix other than `sev-measurement:`.
    #[error(
        "the measurement '{text}' starts with the field name '{field}:'; remove '{field}:' and give only the base64 value after it"
    )]
    OtherField {
        /// The value as given.
        text: String,
        /// The field name before the first ':'.
        field: String,
    },
    /// The base64 decodes to this many bytes instead of [`MEASUREMENT_LEN`].
    #[error(
        "the measurement decodes to {0} bytes, but a SEV launch measurement is {MEASUREMENT_LEN} bytes (32-byte MEASURE and 16-byte nonce)"
    )]
    WrongLength(usize),
}

/// The 48-byte LAUNCH_MEASURE blob as reported by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// MEASURE (offset 0x00): HMAC-SHA256 under the TIK of [`measure_message`].
    pub measure: [u8; 32],
    /// MNONCE (offset 0x20): the nonce the firmware chose for this measurement.
    pub mnonce: [u8; 16],
}

impl Measurement {
    /// Decodes the base64 that QEMU and libvirt report; anything but exactly
    /// 48 bytes of standard base64 is refused.
    pub fn from_base64(s: &str) -> Result<Measurement, MeasurementError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(Self::value_of_line(s)?)
            .map_err(|e| MeasurementError::NotBase64 {
                text: s.to_string(),
                reason: e.to_string(),
            })?;
        Measurement::from_bytes(&raw).ok_or(MeasurementError::WrongLength(raw.len()))
    }

    /// The base64 in `s`: the value alone, or the line `virsh
    /// domlaunchsecinfo` prints for it (`sev-measurement: <base64>`, the
    /// name padded to 15 columns), as owners paste it. Any other field name
    /// is refused with what to remove.
    fn value_of_line(s: &str) -> Result<&str, MeasurementError> {
        let t = s.trim();
        if t.lines().count() > 1 {
            return Err(MeasurementError::SeveralLines { text: s.into() });
        }
        let Some((name, value)) = t.split_once(':') else {
            return Ok(t);
        };
        let name = name.trim();
        if name == "sev-measurement" {
            return Ok(value.trim());
        }
        // Base64 has no ':', so anything before one is a field name.
        Err(MeasurementError::OtherField {
            text: s.into(),
            field: name.into(),
        })
    }

    /// The blob from its raw 48 bytes (MEASURE ‖ MNONCE); `None` for any other length.
    pub fn from_bytes(raw: &[u8]) -> Option<Measurement> {
        if raw.len() != MEASUREMENT_LEN {
            return None;
        }
        let mut m = Measurement {
            measure: [0; 32],
            mnonce: [0; 16],
        };
        m.measure.copy_from_slice(&raw[..32]);
        m.mnonce.copy_from_slice(&raw[32..]);
        Some(m)
    }

    /// The raw 48-byte blob, MEASURE ‖ MNONCE.
    pub fn to_bytes(&self) -> [u8; MEASUREMENT_LEN] {
        let mut b = [0u8; MEASUREMENT_LEN];
        b[..32].copy_from_slice(&self.measure);
        b[32..].copy_from_slice(&self.mnonce);
        b
    }

    /// The blob in standard base64, as QEMU and libvirt report it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }
}

/// The message the firmware MACs: 0x04 ‖ API major ‖ API minor ‖ build ‖
/// policy ‖ LD ‖ MNONCE (SEV API §6.5, for API 0.17 and later).
pub fn measure_message(info: &LaunchInfo, ld: &[u8; 32], mnonce: &[u8; 16]) -> [u8; 56] {
    let mut m = [0u8; 56];
    m[0] = 0x04;
    m[1] = info.api_major;
    m[2] = info.api_minor;
    m[3] = info.build_id;
    m[4..8].copy_from_slice(&info.policy.to_le_bytes());
    m[8..40].copy_from_slice(ld);
    m[40..56].copy_from_slice(mnonce);
    m
}

/// MEASURE = HMAC-SHA256(TIK, message).
pub fn compute_measure(tik: &Tik, info: &LaunchInfo, ld: &[u8; 32], mnonce: &[u8; 16]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(tik.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(&measure_message(info, ld, mnonce));
    mac.finalize().into_bytes().into()
}

/// Compares two MEASURE values in constant time.
pub fn measures_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// AMD sev-tool readme (= virtee/sev `session::verify`).
    #[test]
    fn sev_tool_vector() {
        let tik = Tik::from_slice(&h::<16>("66320db73158a35a255d051758e95ed4")).unwrap();
        let info = LaunchInfo {
            api_major: 0,
            api_minor: 0x12,
            build_id: 0x0f,
            policy: 0,
        };
        let ld = h::<32>("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let nonce = h::<16>("4fbe0bedbad6c86ae8f68971d103e554");
        let m = compute_measure(&tik, &info, &ld, &nonce);
        assert_eq!(
            hex::encode(m),
            "6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea"
        );
        let mut other = m;
        other[31] ^= 1;
        assert!(measures_equal(&m, &m));
        assert!(!measures_equal(&m, &other));
    }

    #[test]
    fn measurement_base64_must_be_48_bytes() {
        assert!(Measurement::from_base64("not base64!").is_err());
        assert!(Measurement::from_base64("AAAA").is_err());
        let b = "lswbxWxI9gckya16JQvdFtpYmNO4b+3inAPpqsgoBI7DE/q1EcIWsVBbGy6pkDxA";
        assert_eq!(Measurement::from_base64(b).unwrap().to_base64(), b);
    }

    #[test]
    fn firmware_state_can_be_reused() {
        let base = LaunchDigest::from_firmware(&b"firmware"[..]).unwrap();
        assert_eq!(
            base.firmware_digest().unwrap(),
            <[u8; 32]>::from(Sha256::digest(b"firmware"))
        );
        let mut a = base.clone();
        a.update_kernel_hashes(&[7u8; 176]);
        let mut whole = Sha256::new();
        whole.update(b"firmware");
        whole.update([7u8; 176]);
        assert_eq!(a.finalize(), <[u8; 32]>::from(whole.finalize()));
        assert_eq!(
            base.finalize(),
            <[u8; 32]>::from(Sha256::digest(b"firmware"))
        );
    }
}
