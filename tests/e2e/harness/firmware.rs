//! The firmware images of the domains: Debian's OVMF.fd with its OVMF footer entries patched
//! (kernel hashes, secret area) and SNP metadata added; sev-snp-measure for the wrapper.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use super::{HASH_AREA_BASE, HASH_AREA_SIZE};

const HASH_AREA_GUID: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
const FOOTER_GUID: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";

fn guid_le(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for i in 0..16 {
        b[i] = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// Copy of `src` with the OVMF footer entry `HASH_AREA_GUID` set to (base, size).
pub fn patch_hash_area(src: &[u8], base: u32, size: u32) -> Vec<u8> {
    patch_area(src, HASH_AREA_GUID, base, size)
}

/// Copy of `src` with the OVMF footer entry `guid` (a `{u32 base; u32 size}`
/// area: kernel hashes or secret) set to (base, size).
pub fn patch_area(src: &[u8], guid: &str, base: u32, size: u32) -> Vec<u8> {
    let mut fw = src.to_vec();
    let n = fw.len();
    assert_eq!(
        &fw[n - 48..n - 32],
        &guid_le(FOOTER_GUID),
        "no OVMF footer table"
    );
    let table_len = u16::from_le_bytes([fw[n - 50], fw[n - 49]]) as usize;
    let start = n - 32 - table_len;
    let mut pos = n - 50; // end of the last real entry
    let want = guid_le(guid);
    while pos >= start + 18 {
        let len = u16::from_le_bytes([fw[pos - 18], fw[pos - 17]]) as usize;
        if fw[pos - 16..pos] == want {
            assert!(len >= 26, "area entry {guid} too short");
            let d = pos - 18 - 8;
            fw[d..d + 4].copy_from_slice(&base.to_le_bytes());
            fw[d + 4..d + 8].copy_from_slice(&size.to_le_bytes());
            return fw;
        }
        assert!(
            len >= 18 && pos >= start + len,
            "malformed OVMF footer table"
        );
        pos -= len;
    }
    panic!("firmware has no footer entry {guid}");
}

/// The OVMF footer entry of the SEV metadata (`{u32 offset from the end of the image}`).
const SEV_METADATA_GUID: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
/// SEV metadata section type of the page that holds the SNP kernel hash table.
pub const SNP_KERNEL_HASHES_SECTION: u32 = 0x10;
/// Where [`snp_kernel_hashes_firmware`] writes the new SEV metadata: this many bytes before
/// the end of Debian's OVMF.fd, in free space of the last firmware volume (all 0xFF).
const SNP_METADATA_FROM_END: usize = 0x2000;

/// (start, length) of the data of the OVMF footer entry `guid`.
fn footer_entry(fw: &[u8], guid: &str) -> Option<(usize, usize)> {
    let n = fw.len();
    if n < 50 || fw[n - 48..n - 32] != guid_le(FOOTER_GUID) {
        return None;
    }
    let table_len = u16::from_le_bytes([fw[n - 50], fw[n - 49]]) as usize;
    let start = (n - 32).checked_sub(table_len)?;
    let want = guid_le(guid);
    let mut pos = n - 50;
    while pos >= start + 18 {
        let len = u16::from_le_bytes([fw[pos - 18], fw[pos - 17]]) as usize;
        if len < 18 || pos < start + len {
            return None;
        }
        if fw[pos - 16..pos] == want {
            return Some((pos - len, len - 18));
        }
        pos -= len;
    }
    None
}

/// Copy of Debian's OVMF.fd (`src`) an SNP guest can boot with kernel hashes: the hash area
/// at [`HASH_AREA_BASE`] / [`HASH_AREA_SIZE`] as for SEV, and SEV metadata with an
/// SNP_KERNEL_HASHES section for the hash area's page (Debian's build has none: only the
/// AmdSev build does). The page is cut out of the SNP_SEC_MEM section that covers it; the new
/// metadata goes into free space near the end of the image and the footer entry points
/// there. QEMU under TCG never reads the metadata; QEMU on SNP hardware, sev-snp-measure and
/// the tool measure the image by it.
pub fn snp_kernel_hashes_firmware(src: &[u8]) -> Vec<u8> {
    let mut fw = patch_hash_area(src, HASH_AREA_BASE, HASH_AREA_SIZE);
    let n = fw.len();
    let (at, len) = footer_entry(&fw, SEV_METADATA_GUID).expect("no SEV metadata footer entry");
    assert!(len >= 4);
    let off = u32::from_le_bytes(fw[at..at + 4].try_into().unwrap()) as usize;
    let hdr = n - off;
    assert_eq!(&fw[hdr..hdr + 4], b"ASEV", "no SEV metadata header");
    let count = u32::from_le_bytes(fw[hdr + 12..hdr + 16].try_into().unwrap()) as usize;
    let page = HASH_AREA_BASE & !0xFFF;
    let mut sections: Vec<[u32; 3]> = Vec::new();
    for i in 0..count {
        let e = hdr + 16 + 12 * i;
        let w = |k: usize| u32::from_le_bytes(fw[e + 4 * k..e + 4 * k + 4].try_into().unwrap());
        let (gpa, size, kind) = (w(0), w(1), w(2));
        if gpa <= page && page < gpa + size && kind != SNP_KERNEL_HASHES_SECTION {
            if gpa < page {
                sections.push([gpa, page - gpa, kind]);
            }
            sections.push([page, 0x1000, SNP_KERNEL_HASHES_SECTION]);
            if page + 0x1000 < gpa + size {
                sections.push([page + 0x1000, gpa + size - page - 0x1000, kind]);
            }
        } else {
            sections.push([gpa, size, kind]);
        }
    }
    assert!(
        sections.iter().any(|s| s[2] == SNP_KERNEL_HASHES_SECTION),
        "no SEV metadata section covers the hash area's page 0x{page:x}"
    );
    let mut meta = Vec::new();
    meta.extend_from_slice(b"ASEV");
    meta.extend_from_slice(&(16 + 12 * sections.len() as u32).to_le_bytes());
    meta.extend_from_slice(&1u32.to_le_bytes());
    meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for s in &sections {
        for w in s {
            meta.extend_from_slice(&w.to_le_bytes());
        }
    }
    let new = n - SNP_METADATA_FROM_END;
    assert!(
        fw[new..new + meta.len()].iter().all(|&b| b == 0xFF),
        "no free space for the SEV metadata at 0x{new:x}"
    );
    fw[new..new + meta.len()].copy_from_slice(&meta);
    fw[at..at + 4].copy_from_slice(&(SNP_METADATA_FROM_END as u32).to_le_bytes());
    fw
}

/// Where PyPI sev-snp-measure's `sevsnpmeasure` package is (scripts/setup.sh installs it in
/// a venv). The SNP simulation of the wrapper imports a copy of it from the run's `sim/`
/// (the chroot's python3 cannot see /opt).
pub const SEVSNPMEASURE_PKG: &str =
    "/opt/sev-snp-measure/lib/python3.11/site-packages/sevsnpmeasure";

/// Copies the `sevsnpmeasure` package into `sim_dir` (no byte-code).
pub fn copy_sevsnpmeasure(sim_dir: &Path) -> Result<(), String> {
    let src = Path::new(SEVSNPMEASURE_PKG);
    let dst = sim_dir.join("sevsnpmeasure");
    let rd = fs::read_dir(src).map_err(|e| format!("{}: {e} (scripts/setup.sh)", src.display()))?;
    fs::create_dir_all(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    for e in rd.flatten() {
        let name = e.file_name();
        if Path::new(&name).extension() == Some(OsStr::new("py")) {
            fs::copy(e.path(), dst.join(&name)).map_err(|e| format!("copy sevsnpmeasure: {e}"))?;
        }
    }
    Ok(())
}
