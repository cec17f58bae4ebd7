//! Numbers and hex on the command line, one parser for the main command and
//! the `snp-*` subcommands: integers in decimal or `0x` hex, byte ranges the
//! firmware reports, and byte strings written as hex (the `hex` crate).

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

/// Bytes written as hex digits, with an optional `0x`; `None` when the text
/// is not an even number of hex digits.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(s).ok()
}

/// Exactly `N` bytes written as `2 * N` hex digits.
pub fn decode_hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    decode_hex(s).and_then(|v| <[u8; N]>::try_from(v).ok())
}

/// Exactly `N` bytes as `2 * N` hex digits, for clap.
pub fn hex_n<const N: usize>(s: &str) -> Result<[u8; N], String> {
    decode_hex_array::<N>(s)
        .ok_or_else(|| format!("'{s}' is not {N} bytes written as {} hex digits", 2 * N))
}

/// Up to `N` bytes in hex, zero-padded to `N`.
pub fn hex_padded<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let v = decode_hex(s)
        .filter(|v| v.len() <= N)
        .ok_or_else(|| format!("'{s}' is not up to {N} bytes written in hex"))?;
    let mut a = [0u8; N];
    a[..v.len()].copy_from_slice(&v);
    Ok(a)
}

/// REPORT_DATA: up to 64 bytes in hex, zero-padded.
pub fn hex_padded_64(s: &str) -> Result<[u8; 64], String> {
    hex_padded::<64>(s)
}

/// A CHIP_ID: 64 bytes, or Turin's 8-byte hwid zero-padded to 64.
pub fn hex_chip_id(s: &str) -> Result<[u8; 64], String> {
    match decode_hex(s).map(|v| v.len()) {
        Some(8) | Some(64) => hex_padded::<64>(s),
        _ => Err(format!(
            "'{s}' is not a chip ID: 64 bytes (128 hex digits), or 8 (16) on Turin"
        )),
    }
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
    fn hex_bytes() {
        assert_eq!(decode_hex("0x00ff"), Some(vec![0, 255]));
        assert_eq!(decode_hex("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex_array::<2>("0102"), Some([1, 2]));
        assert_eq!(decode_hex_array::<2>("010203"), None);
    }
}
