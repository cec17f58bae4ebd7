//! The launch the guest owner expects, built from files the owner trusts,
//! and the computation of its GCTX.LD.
//!
//! Files are streamed through the hashers ([`crate::input`]); only the
//! firmware's tail (for the OVMF footer table) and the VMSA pages are held
//! in memory.

use std::io::Read;
use std::path::Path;

use crate::core::kernel_hashes::{self, KernelHashes};
use crate::core::measurement::LaunchDigest;
use crate::core::ovmf::{FooterTable, GuestArea, FOOTER_TAIL_LEN};
use crate::core::vmsa::{self, VmsaConfig, VMSA_LEN};
use crate::error::{Error, Result};
use crate::input::{open_within, read_exact_file, Size, MAX_FIRMWARE_LEN};

/// More vCPUs than any SEV-ES launch has.
pub const MAX_VCPUS: u32 = 512;

/// Passes reads through, keeping the last `keep` of
/// them: the firmware's footer table is found in its tail after the image
/// has been hashed in one pass, so a pipe needs no second read.
struct TailKeeper<R> {
    inner: R,
    keep: usize,
    tail: Vec<u8>,
}

impl<R: Read> Read for TailKeeper<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tail.extend_from_slice(&buf[..n]);
        // Trimming only past twice the size keeps the copying linear.
        if self.tail.len() > 2 * self.keep {
            let cut = self.tail.len() - self.keep;
            self.tail.drain(..cut);
        }
        Ok(n)
    }
}

impl<R> TailKeeper<R> {
    fn into_tail(mut self) -> (Vec<u8>, R) {
        if self.tail.len() > self.keep {
            let cut = self.tail.len() - self.keep;
            self.tail.drain(..cut);
        }
        (self.tail, self.inner)
    }
}

/// The firmware image: the launch digest after it, and its footer table.
#[derive(Clone)]
pub struct Firmware {
    /// GCTX.LD's running SHA-256 after the image's bytes, to be extended with
    /// the kernel hashes table and the VMSAs.
    pub digest_after_firmware: LaunchDigest,
    /// The OVMF footer table from the image's tail; `None` when the image has
    /// none.
    pub footer: Option<FooterTable>,
    /// Size of the image in bytes.
    pub len: u64,
}

impl Firmware {
    /// Reads the image at `path` (a file or a pipe) once, hashing it and keeping
    /// its footer table; an empty image or one over 64 MiB is refused.
    pub fn load(path: &Path) -> Result<Firmware> {
        const WHAT: &str = "firmware";
        let too_large = |size: Size| {
            Error::Usage(format!(
                "firmware '{}' is {size}; no OVMF image is larger than {MAX_FIRMWARE_LEN} bytes, so this is not a firmware image",
                path.display()
            ))
        };
        // One pass, hashing and keeping the tail, so a pipe works as well as
        // a file; a regular file that says it is too large is refused unread.
        let mut reader = TailKeeper {
            inner: open_within(WHAT, path, MAX_FIRMWARE_LEN, too_large)?,
            keep: FOOTER_TAIL_LEN,
            tail: Vec::new(),
        };
        let digest_after_firmware =
            LaunchDigest::from_firmware(&mut reader).map_err(|e| Error::io(WHAT, path, &e))?;
        let (tail, stream) = reader.into_tail();
        let len = stream.finish()?;
        if len == 0 {
            return Err(Error::Usage(format!(
                "firmware '{}' is empty",
                path.display()
            )));
        }
        let footer = if tail.len() < 50 {
            None
        } else {
            FooterTable::parse(&tail)
                .map_err(|e| Error::Usage(format!("firmware '{}': {e}", path.display())))?
        };
        Ok(Firmware {
            digest_after_firmware,
            footer,
            len,
        })
    }

    /// Where QEMU would place the kernel hashes table; an error when the
    /// firmware has none, because QEMU then refuses measured direct boot.
    pub fn require_kernel_hash_area(&self) -> Result<GuestArea> {
        let area = match &self.footer {
            None => None,
            Some(t) => t
                .kernel_hash_area()
                .map_err(|e| Error::Usage(format!("firmware: {e}")))?,
        };
        area.ok_or_else(|| {
            Error::Usage(
                "the firmware has no area for the kernel hashes table (OVMF footer entry \
                 7255371f-3a3b-4b04-927b-1da6efa8d454 is missing or zero), so QEMU cannot boot a \
                 kernel with measured direct boot in it; use a firmware built for it (edk2 \
                 AmdSevX64, e.g. OVMF.amdsev.fd) or drop --kernel/--initrd/--cmdline"
                    .into(),
            )
        })
    }

    /// The SEV-ES AP reset address; an error when the firmware has none.
    pub fn require_sev_es_reset_addr(&self) -> Result<u32> {
        let addr = match &self.footer {
            None => None,
            Some(t) => t
                .sev_es_reset_addr()
                .map_err(|e| Error::Usage(format!("firmware: {e}")))?,
        };
        addr.ok_or_else(|| {
            Error::Usage(
                "the firmware has no SEV-ES reset block (OVMF footer entry \
                 00f771de-1a7e-4fcb-890e-68c77e2fb44e), so it cannot start SEV-ES application \
                 processors; use an OVMF build with SEV-ES support or give --vmsa-cpu0/--vmsa-cpu1"
                    .into(),
            )
        })
    }

    /// The secret area OVMF reserves, if the footer names one.
    pub fn secret_area(&self) -> Option<GuestArea> {
        self.footer
            .as_ref()
            .and_then(|t| t.secret_area().ok().flatten())
    }
}

/// Where the VMSA pages of an SEV-ES guest come from.
#[derive(Clone)]
pub enum VmsaSource {
    /// Pages the owner captured or built: one for the boot CPU, one for all others.
    Pages {
        /// The boot CPU's VMSA page (`--vmsa-cpu0`).
        bsp: Box<[u8; VMSA_LEN]>,
        /// The VMSA page of every other vCPU (`--vmsa-cpu1`), when given.
        ap: Option<Box<[u8; VMSA_LEN]>>,
    },
    /// Built here from the vCPU signature and the firmware's AP reset address.
    Built {
        /// The vCPU signature, SEV_FEATURES and VMSA form of every vCPU.
        config: VmsaConfig,
        /// The EIP the other vCPUs start at: the address in the firmware's SEV-ES
        /// reset block (OVMF footer table).
        ap_reset_addr: u32,
    },
}

impl VmsaSource {
    /// The boot CPU's page and the page of every other vCPU.
    pub fn pages(&self) -> (Box<[u8; VMSA_LEN]>, Option<Box<[u8; VMSA_LEN]>>) {
        match self {
            VmsaSource::Pages { bsp, ap } => (bsp.clone(), ap.clone()),
            VmsaSource::Built {
                config,
                ap_reset_addr,
            } => (
                vmsa::build(config, vmsa::BSP_RESET_EIP),
                Some(vmsa::build(config, *ap_reset_addr)),
            ),
        }
    }
}

/// Reads a VMSA page file (exactly 4096 bytes).
pub fn read_vmsa(what: &str, path: &Path) -> Result<Box<[u8; VMSA_LEN]>> {
    let b = read_exact_file(what, path, VMSA_LEN)?;
    let mut page = Box::new([0u8; VMSA_LEN]);
    page.copy_from_slice(&b);
    Ok(page)
}

/// The intermediate values of one LD computation, for --debug.
pub struct LdTrace {
    /// The 176-byte padded kernel hashes table measured after the firmware
    /// (measured direct boot only).
    pub kernel_table: Option<[u8; kernel_hashes::PADDED_TABLE_LEN]>,
    /// SHA-256 of the boot CPU's VMSA page (SEV-ES only).
    pub vmsa_bsp_sha256: Option<[u8; 32]>,
    /// SHA-256 of the VMSA page of the other vCPUs (SEV-ES with more than one
    /// vCPU).
    pub vmsa_ap_sha256: Option<[u8; 32]>,
    /// The final GCTX.LD (SHA-256).
    pub ld: [u8; 32],
}

/// Computes GCTX.LD: firmware ‖ kernel hashes table (with a kernel) ‖ one
/// VMSA page per vCPU (SEV-ES only).
pub fn compute_ld(
    firmware: &Firmware,
    kernel: Option<&KernelHashes>,
    sev_es: Option<(&VmsaSource, u32)>,
) -> Result<LdTrace> {
    use sha2::{Digest, Sha256};
    let mut ld = firmware.digest_after_firmware.clone();
    let kernel_table = kernel.map(|k| k.padded_table());
    if let Some(t) = &kernel_table {
        ld.update_kernel_hashes(t);
    }
    let (mut bsp_sha, mut ap_sha) = (None, None);
    if let Some((source, num_cpus)) = sev_es {
        if num_cpus == 0 || num_cpus > MAX_VCPUS {
            return Err(Error::Usage(format!(
                "the number of vCPUs must be between 1 and {MAX_VCPUS}, not {num_cpus}"
            )));
        }
        let (bsp, ap) = source.pages();
        ld.update_vmsa(&bsp);
        bsp_sha = Some(Sha256::digest(&bsp[..]).into());
        if num_cpus > 1 {
            let ap = ap.ok_or_else(|| {
                Error::Usage(format!(
                    "the guest has {num_cpus} vCPUs, so a VMSA for the additional vCPUs is needed: give --vmsa-cpu1"
                ))
            })?;
            ap_sha = Some(Sha256::digest(&ap[..]).into());
            for _ in 1..num_cpus {
                ld.update_vmsa(&ap);
            }
        }
    }
    Ok(LdTrace {
        kernel_table,
        vmsa_bsp_sha256: bsp_sha,
        vmsa_ap_sha256: ap_sha,
        ld: ld.finalize(),
    })
}
