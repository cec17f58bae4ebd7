//! vCPU signatures: CPUID(1).EAX, which KVM loads into RDX at reset and so
//! into every SEV-ES VMSA.

/// A family, model or stepping that CPUID(1).EAX cannot encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CpuError {
    /// Family above 0xF + 0xFF (base family 0xF plus the 8-bit extended family).
    #[error("CPU family {0} is out of range (0 to 270)")]
    Family(u32),
    /// Model above 0xFF (4-bit model plus 4-bit extended model).
    #[error("CPU model {0} is out of range (0 to 255)")]
    Model(u32),
    /// Stepping above 0xF (4-bit field).
    #[error("CPU stepping {0} is out of range (0 to 15)")]
    Stepping(u32),
}

/// The family, model and stepping a CPUID(1).EAX signature encodes (the
/// inverse of [`signature`]).
pub fn family_model_stepping(sig: u32) -> (u32, u32, u32) {
    let base_family = (sig >> 8) & 0xF;
    let family = if base_family == 0xF {
        base_family + ((sig >> 20) & 0xFF)
    } else {
        base_family
    };
    let model = ((sig >> 4) & 0xF) | ((sig >> 12) & 0xF0);
    (family, model, sig & 0xF)
}

/// Encodes family, model and stepping as CPUID(1).EAX. Families above 0xF
/// use the extended-family field, as AMD defines it.
pub fn signature(family: u32, model: u32, stepping: u32) -> Result<u32, CpuError> {
    if family > 0xF + 0xFF {
        return Err(CpuError::Family(family));
    }
    if model > 0xFF {
        return Err(CpuError::Model(model));
    }
    if stepping > 0xF {
        return Err(CpuError::Stepping(stepping));
    }
    let (base_family, ext_family) = if family > 0xF {
        (0xF, family - 0xF)
    } else {
        (family, 0)
    };
    Ok((ext_family << 20)
        | ((model >> 4) << 16)
        | (base_family << 8)
        | ((model & 0xF) << 4)
        | stepping)
}

/// Signatures of QEMU's named AMD EPYC models (measurement.md §5).
pub const NAMED_MODELS: &[(&str, u32)] = &[
    ("EPYC", 0x800F12),
    ("EPYC-v1", 0x800F12),
    ("EPYC-v2", 0x800F12),
    ("EPYC-v3", 0x800F12),
    ("EPYC-v4", 0x800F12),
    ("EPYC-IBPB", 0x800F12),
    ("EPYC-Rome", 0x830F10),
    ("EPYC-Milan", 0xA00F11),
    ("EPYC-Genoa", 0xA10F10),
    ("EPYC-Turin", 0xB00F00),
];

/// The signature of a named QEMU CPU model, if known.
pub fn named_model_signature(name: &str) -> Option<u32> {
    NAMED_MODELS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| *s)
}

/// The signature of a QEMU model name, versioned names (EPYC-Rome-v4)
/// keeping their base model's family, model and stepping.
pub fn versioned_model_signature(name: &str) -> Option<u32> {
    if let Some(sig) = named_model_signature(name) {
        return Some(sig);
    }
    let (base, version) = name.rsplit_once("-v")?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    named_model_signature(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_signatures() {
        assert_eq!(signature(23, 1, 2), Ok(0x800F12)); // EPYC
        assert_eq!(signature(23, 0x31, 0), Ok(0x830F10)); // Rome
        assert_eq!(signature(25, 1, 1), Ok(0xA00F11)); // Milan
        assert_eq!(signature(25, 0x11, 0), Ok(0xA10F10)); // Genoa
        assert_eq!(signature(26, 0, 0), Ok(0xB00F00)); // Turin
        assert_eq!(signature(14, 1, 2), Ok(0x0E12));
        assert!(signature(0x10F, 0, 0).is_err());
        assert!(signature(25, 256, 0).is_err());
        assert!(signature(25, 1, 16).is_err());
        assert_eq!(named_model_signature("epyc-milan"), Some(0xA00F11));
        assert_eq!(named_model_signature("Skylake"), None);
    }

    #[test]
    fn signatures_decode_to_family_model_stepping() {
        for (fms, sig) in [
            ((23, 1, 2), 0x800F12),
            ((23, 0x31, 0), 0x830F10),
            ((25, 1, 1), 0xA00F11),
            ((25, 0x11, 0), 0xA10F10),
            ((26, 0, 0), 0xB00F00),
            ((14, 1, 2), 0x0E12),
        ] {
            assert_eq!(family_model_stepping(sig), fms, "{sig:#x}");
        }
    }
}
