//! Numbers and digests on the command line, one parser for the main command
//! and the `snp-*` subcommands: integers in decimal or `0x` hex, byte ranges
//! the firmware reports, and digests and IDs in hex or base64, each text read
//! one way only ([`decode_digest`]).

use crate::snp::validate::MinTcb;

/// A non-negative integer, decimal or hex with `0x`.
pub fn parse_int(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("'{s}' is not a non-negative integer (decimal, or hex with 0x)"))
}

/// One byte the SEV firmware reports (API version, build ID).
pub fn parse_u8(s: &str) -> Result<u8, String> {
    let v = parse_int(s)?;
    u8::try_from(v).map_err(|_| {
        format!("{v} is out of range: the SEV firmware reports this as one byte (0 to 255)")
    })
}

pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_int(s)?;
    u32::try_from(v).map_err(|_| format!("{v} is out of range (0 to {})", u32::MAX))
}

pub fn parse_u64(s: &str) -> Result<u64, String> {
    parse_int(s)
}

/// `MAJOR.MINOR`, each one byte.
pub fn parse_api(s: &str) -> Result<(u8, u8), String> {
    let (maj, min) = s
        .split_once('.')
        .ok_or_else(|| format!("'{s}' is not MAJOR.MINOR (for example 1.51)"))?;
    Ok((parse_u8(maj)?, parse_u8(min)?))
}

/// The text without its whitespace and an optional `0x`.
fn strip_0x(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t)
}

/// Hex digits only, at least one.
fn all_hex(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How many base64 characters (with padding) hold `n` bytes.
const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Base64 (standard alphabet, padded or not) of any length.
fn decode_base64(t: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let e = &base64::engine::general_purpose::STANDARD;
    let n = &base64::engine::general_purpose::STANDARD_NO_PAD;
    e.decode(t).or_else(|_| n.decode(t)).ok()
}

/// What `s` is when it is not one of the accepted forms, for the message.
fn what_it_is(s: &str) -> String {
    let t = s.trim();
    let h = strip_0x(s);
    if all_hex(h) {
        if h.len() % 2 == 1 {
            return format!("'{s}' is {} hex digits, an odd number", h.len());
        }
        return format!("'{s}' is {} bytes of hex", h.len() / 2);
    }
    match decode_base64(t) {
        Some(b) => format!("'{s}' is {} bytes of base64", b.len()),
        None => format!("'{s}' is neither hex nor base64"),
    }
}

/// Bytes given as hex or as base64, read one way only: hex when the text is
/// hex digits (an optional `0x`) of one of the `lens` (bytes) and that
/// length's count of digits, else base64 of one of those lengths. `name`
/// (with its article: "a MEASUREMENT") says what the value is.
pub fn decode_digest(name: &str, lens: &[usize], s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let h = strip_0x(s);
    if all_hex(h) && lens.iter().any(|&n| h.len() == 2 * n) {
        if let Ok(v) = hex::decode(h) {
            return Ok(v);
        }
    }
    if let Some(v) = decode_base64(t).filter(|v| lens.contains(&v.len())) {
        return Ok(v);
    }
    let forms: Vec<String> = lens
        .iter()
        .map(|&n| {
            format!(
                "{n} bytes: {} hex digits or {} base64 characters",
                2 * n,
                base64_len(n)
            )
        })
        .collect();
    Err(format!(
        "{}; {name} is {}",
        what_it_is(s),
        forms.join(", or ")
    ))
}

/// Exactly `N` bytes, hex or base64 ([`decode_digest`]).
pub fn digest_n<const N: usize>(name: &str, s: &str) -> Result<[u8; N], String> {
    decode_digest(name, &[N], s)
        .and_then(|v| <[u8; N]>::try_from(v).map_err(|_| format!("{name} is {N} bytes")))
}

/// `--measurement`, `--ovmf-hash`, `--digest`: 48 bytes, hex or base64.
pub fn measurement(s: &str) -> Result<[u8; 48], String> {
    digest_n::<48>("a MEASUREMENT", s)
}

/// `--trusted-id-key-digest`, `--trusted-author-key-digest`: SHA-384 of a key.
pub fn key_digest(s: &str) -> Result<[u8; 48], String> {
    digest_n::<48>("a key digest (SHA-384)", s)
}

/// `--host-data`: 32 bytes, hex or base64.
pub fn host_data(s: &str) -> Result<[u8; 32], String> {
    digest_n::<32>("a HOST_DATA", s)
}

/// `--report-id`, `--report-id-ma`: 32 bytes, hex or base64.
pub fn report_id(s: &str) -> Result<[u8; 32], String> {
    digest_n::<32>("a REPORT_ID", s)
}

/// `--family-id`: 16 bytes, hex or base64.
pub fn family_id(s: &str) -> Result<[u8; 16], String> {
    digest_n::<16>("a FAMILY_ID", s)
}

/// `--image-id`: 16 bytes, hex or base64.
pub fn image_id(s: &str) -> Result<[u8; 16], String> {
    digest_n::<16>("an IMAGE_ID", s)
}

/// SEV's `--measurement` (MEASURE and MNONCE, 48 bytes): base64, alone or
/// as virsh's `sev-measurement: ...` line, kept as given for the launch
/// source to read (which says what is wrong with it); 96 hex digits are
/// turned into that base64.
pub fn sev_measurement(s: &str) -> Result<String, String> {
    use base64::Engine as _;
    let h = strip_0x(s);
    if h.len() == 96 && all_hex(h) {
        if let Ok(v) = hex::decode(h) {
            return Ok(base64::engine::general_purpose::STANDARD.encode(v));
        }
    }
    Ok(s.to_string())
}

/// REPORT_DATA: up to 64 bytes as hex digits (zero-padded to 64), or
/// base64 of up to 64 bytes when the text is not all hex digits.
pub fn hex_padded_64(s: &str) -> Result<[u8; 64], String> {
    let t = s.trim();
    let h = strip_0x(s);
    let v = if all_hex(h) {
        hex::decode(h).ok()
    } else {
        decode_base64(t)
    };
    let v = v.filter(|v| v.len() <= 64).ok_or_else(|| {
        format!(
            "{}; a REPORT_DATA is up to 64 bytes: up to 128 hex digits or 88 base64 characters, zero-padded to 64",
            what_it_is(s)
        )
    })?;
    let mut a = [0u8; 64];
    a[..v.len()].copy_from_slice(&v);
    Ok(a)
}

/// A CHIP_ID: 64 bytes, or Turin's 8-byte hwid zero-padded to 64; hex or base64.
pub fn hex_chip_id(s: &str) -> Result<[u8; 64], String> {
    let v = decode_digest("a CHIP_ID", &[64, 8], s)?;
    let mut a = [0u8; 64];
    a[..v.len()].copy_from_slice(&v);
    Ok(a)
}

/// A minimum TCB: a raw TCB_VERSION, or `bl=N,tee=N,snp=N,ucode=N[,fmc=N]`.
pub fn parse_tcb(s: &str) -> Result<MinTcb, String> {
    if !s.contains('=') {
        return parse_int(s).map(MinTcb::Raw);
    }
    let (mut fmc, mut bl, mut tee, mut snp, mut ucode) = (0, 0, 0, 0, 0);
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not NAME=VALUE"))?;
        let v = parse_u8(v)?;
        match k.trim() {
            "fmc" => fmc = v,
            "bl" => bl = v,
            "tee" => tee = v,
            "snp" => snp = v,
            "ucode" => ucode = v,
            other => {
                return Err(format!(
                    "'{other}' is not a TCB component (fmc, bl, tee, snp, ucode)"
                ))
            }
        }
    }
    Ok(MinTcb::Components {
        fmc,
        bl,
        tee,
        snp,
        ucode,
    })
}

/// An RFC 3339 time (or a bare date), as seconds since 1970.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let t = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&t)
        .or_else(|_| humantime::parse_rfc3339(&t))
        .map_err(|e| format!("'{s}' is not an RFC 3339 time such as 2025-06-01T00:00:00Z ({e})"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("'{s}' is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snp_option_parsers() {
        assert_eq!(parse_api("1.55").unwrap(), (1, 55));
        assert!(parse_api("1").is_err());
        assert_eq!(
            parse_tcb("bl=3,tee=0,snp=8,ucode=115").unwrap(),
            MinTcb::Components {
                fmc: 0,
                bl: 3,
                tee: 0,
                snp: 8,
                ucode: 115
            }
        );
        assert_eq!(
            parse_tcb("0x7308000000000003").unwrap(),
            MinTcb::Raw(0x7308000000000003)
        );
        assert!(parse_tcb("bl=300").is_err());
        assert!(parse_tcb("xx=1").is_err());
        assert_eq!(hex_padded_64("0102").unwrap()[..3], [1, 2, 0]);
        assert!(hex_padded_64(&"00".repeat(65)).is_err());
        assert!(hex_chip_id("0011223344556677").is_ok());
        assert!(hex_chip_id("0011").is_err());
        assert_eq!(
            hex_chip_id("AAECAwQFBgc=").unwrap()[..9],
            [0, 1, 2, 3, 4, 5, 6, 7, 0]
        );
        assert_eq!(parse_time("2025-06-01").unwrap(), 1_748_736_000);
        assert_eq!(parse_time("2025-06-01T00:00:00Z").unwrap(), 1_748_736_000);
        assert!(parse_time("June").is_err());
    }

    #[test]
    fn integers_in_decimal_and_hex() {
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert_eq!(parse_int(" 12 "), Ok(12));
        assert!(parse_int("-1").is_err());
        assert!(parse_u8("256").unwrap_err().contains("out of range"));
        assert_eq!(parse_u32("0xffffffff"), Ok(u32::MAX));
        assert!(parse_u32("0x100000000").is_err());
        assert_eq!(parse_api("1.51"), Ok((1, 51)));
        assert!(parse_api("151").is_err());
    }

    #[test]
    fn digests_in_hex_or_base64() {
        // Expected forms from Python: base64.b64encode(bytes(range(48))).
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v";
        let want: [u8; 48] = core::array::from_fn(|i| i as u8);
        assert_eq!(measurement(b64).unwrap(), want);
        assert_eq!(measurement(&hex::encode(want)).unwrap(), want);
        assert_eq!(
            measurement(&format!("0x{}", hex::encode(want))).unwrap(),
            want
        );
        assert_eq!(
            measurement("abcd").unwrap_err(),
            "'abcd' is 2 bytes of hex; a MEASUREMENT is 48 bytes: 96 hex digits or 64 base64 characters"
        );
        assert!(measurement("abc").unwrap_err().contains("odd"));
        assert!(measurement("AAECAw==")
            .unwrap_err()
            .contains("4 bytes of base64"));
        assert!(measurement("not base64!")
            .unwrap_err()
            .contains("neither hex nor base64"));
        // 16 zero bytes: base64 "AAAAAAAAAAAAAAAAAAAAAA==".
        assert_eq!(family_id("AAAAAAAAAAAAAAAAAAAAAA==").unwrap(), [0; 16]);
        assert_eq!(image_id(&"02".repeat(16)).unwrap(), [2; 16]);
        assert!(image_id(&"02".repeat(15))
            .unwrap_err()
            .contains("32 hex digits or 24 base64"));
        assert_eq!(host_data(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert_eq!(hex_padded_64("AQI=").unwrap()[..3], [1, 2, 0]);
        assert!(hex_padded_64("zz").is_err());
        // SEV: hex becomes the base64 the launch source reads; base64 and
        // virsh's line are kept as given.
        assert_eq!(sev_measurement(&hex::encode(want)).unwrap(), b64);
        assert_eq!(sev_measurement(b64).unwrap(), b64);
        let line = format!("sev-measurement: {b64}");
        assert_eq!(sev_measurement(&line).unwrap(), line);
        assert_eq!(sev_measurement("AAAA").unwrap(), "AAAA");
    }
}
