//! Numbers and hex on the command line, one parser for the main command and
//! the `snp-*` subcommands: integers in decimal or `0x` hex, byte ranges the
//! firmware reports, and byte strings written as hex (the `hex` crate).

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

#[cfg(test)]
mod tests {
    use super::*;

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
