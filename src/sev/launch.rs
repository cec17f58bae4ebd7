//! The launch the guest owner expects, built from files the owner trusts,
//! and the computation of its GCTX.LD.
//!
//! Files are streamed through the hashers; only the firmware's tail (for
//! the OVMF footer table) and the VMSA pages are held in memory.
//!
//! Any input may be a pipe, a FIFO, /dev/stdin or a /proc file (owners pipe
//! keys in from a password manager), and those report a size of 0: every
//! size here is counted while reading, and every limit is enforced by
//! reading at most one byte more than it allows.

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use crate::core::kernel_hashes::{self, KernelHashes};
use crate::core::measurement::{sha256_reader, LaunchDigest};
use crate::core::ovmf::{FooterTable, GuestArea, FOOTER_TAIL_LEN};
use crate::core::vmsa::{self, VmsaConfig, VMSA_LEN};
use crate::error::{Error, Result};

/// No real OVMF image is anywhere near this; a larger file is a mistake.
pub const MAX_FIRMWARE_LEN: u64 = 64 * 1024 * 1024;
/// More vCPUs than any SEV-ES launch has.
pub const MAX_VCPUS: u32 = 512;

/// The size of an input as far as it is known: counted, or known only to be
/// over a limit because reading stopped one byte past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Exactly(u64),
    MoreThan(u64),
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Exactly(n) => write!(f, "{n} bytes"),
            Size::MoreThan(n) => write!(f, "more than {n} bytes"),
        }
    }
}

/// Whether two paths name one file: the same device and inode where both
/// exist, else the same path once each one's folder is resolved (so `x`,
/// `./x` and a link to the folder are one file before it is written).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return ma.dev() == mb.dev() && ma.ino() == mb.ino();
    }
    let resolved = |p: &Path| -> Option<std::path::PathBuf> {
        let name = p.file_name()?;
        let folder = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(folder).ok()?.join(name))
    };
    match (resolved(a), resolved(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Opens a file the user named, refusing directories with a clear message.
///
/// The size returned is what a regular file's metadata says, and 0 for
/// anything else: a hint for refusing a huge file before reading it, never
/// the size of what is read (pipes, FIFOs and /proc files say 0).
pub fn open_input(what: &str, path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| Error::io(what, path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io(what, path, &e))?;
    if meta.is_dir() {
        return Err(Error::Usage(format!(
            "{what} '{}' is a directory; give the path of a file",
            path.display()
        )));
    }
    Ok((file, if meta.is_file() { meta.len() } else { 0 }))
}

/// Checks that a file the user named exists and is not a directory, without
/// opening it when it is a pipe or a FIFO: opening and closing a FIFO would
/// lose what its writer sends, and the file is read later.
pub fn check_input(what: &str, path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(what, path, &e))?;
    if meta.is_file() {
        open_input(what, path)?;
    } else if meta.is_dir() {
        return Err(Error::Usage(format!(
            "{what} '{}' is a directory; give the path of a file",
            path.display()
        )));
    }
    Ok(())
}

/// Reads at most `limit + 1` bytes into a buffer allocated once, so no
/// copy of a secret is left behind by growing it. More than `limit` bytes
/// read means the input is over the limit.
pub fn read_limited<R: Read>(
    reader: R,
    limit: usize,
) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(limit + 1));
    reader.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads a small file that must be exactly `len` bytes long.
pub fn read_exact_file(what: &str, path: &Path, len: usize) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let (file, hint) = open_input(what, path)?;
    let wrong = |size: Size| {
        Error::Usage(format!(
            "{what} '{}' must be exactly {len} bytes, but it is {size}",
            path.display()
        ))
    };
    // A regular file says how much too long it is; a pipe is read to find out.
    if hint > len as u64 {
        return Err(wrong(Size::Exactly(hint)));
    }
    let buf = read_limited(file, len).map_err(|e| Error::io(what, path, &e))?;
    match buf.len() {
        n if n == len => Ok(buf),
        n if n > len => Err(wrong(Size::MoreThan(len as u64))),
        n => Err(wrong(Size::Exactly(n as u64))),
    }
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(what: &str, path: &Path) -> Result<[u8; 32]> {
    let (file, _) = open_input(what, path)?;
    sha256_reader(file).map_err(|e| Error::io(what, path, &e))
}

/// An input that can be read more than once: a regular file, or, for a
/// pipe, FIFO or /proc file, its content read into memory under a limit.
pub enum SeekableInput {
    File(File),
    Memory(Cursor<Vec<u8>>),
}

impl Read for SeekableInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SeekableInput::File(f) => f.read(buf),
            SeekableInput::Memory(c) => c.read(buf),
        }
    }
}

impl Seek for SeekableInput {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            SeekableInput::File(f) => f.seek(pos),
            SeekableInput::Memory(c) => c.seek(pos),
        }
    }
}

/// Opens an input that must be read more than once (a firmware image whose
/// footer is read before its pages are hashed). A regular file is used in
/// place; anything else is read into memory, at most `limit + 1` bytes, so
/// its size is what was read. A size over `limit` is returned for the
/// caller to refuse with its own words.
pub fn open_seekable(what: &str, path: &Path, limit: u64) -> Result<(SeekableInput, Size)> {
    let (mut file, hint) = open_input(what, path)?;
    // Regular files of size 0 include /proc files: read those too.
    if hint > 0 {
        return Ok((SeekableInput::File(file), Size::Exactly(hint)));
    }
    let mut data = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(what, path, &e))?;
    let size = match data.len() as u64 {
        n if n > limit => Size::MoreThan(limit),
        n => Size::Exactly(n),
    };
    Ok((SeekableInput::Memory(Cursor::new(data)), size))
}

/// Passes reads through, counting the bytes and keeping the last `keep` of
/// them: the firmware's footer table is found in its tail after the image
/// has been hashed in one pass, so a pipe needs no second read.
struct TailKeeper<R> {
    inner: R,
    keep: usize,
    tail: Vec<u8>,
    total: u64,
}

impl<R: Read> Read for TailKeeper<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
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
    fn into_tail(mut self) -> (Vec<u8>, u64) {
        if self.tail.len() > self.keep {
            let cut = self.tail.len() - self.keep;
            self.tail.drain(..cut);
        }
        (self.tail, self.total)
    }
}

/// The firmware image: the launch digest after it, and its footer table.
#[derive(Clone)]
pub struct Firmware {
    pub digest_after_firmware: LaunchDigest,
    pub footer: Option<FooterTable>,
    pub len: u64,
}

impl Firmware {
    pub fn load(path: &Path) -> Result<Firmware> {
        const WHAT: &str = "firmware";
        let too_large = |size: Size| {
            Error::Usage(format!(
                "firmware '{}' is {size}; no OVMF image is larger than {MAX_FIRMWARE_LEN} bytes, so this is not a firmware image",
                path.display()
            ))
        };
        let (file, hint) = open_input(WHAT, path)?;
        // A regular file that says it is too large is refused unread.
        if hint > MAX_FIRMWARE_LEN {
            return Err(too_large(Size::Exactly(hint)));
        }
        // One pass, hashing and keeping the tail, so a pipe works as well as a file.
        let mut reader = TailKeeper {
            inner: file.take(MAX_FIRMWARE_LEN + 1),
            keep: FOOTER_TAIL_LEN,
            tail: Vec::new(),
            total: 0,
        };
        let digest_after_firmware =
            LaunchDigest::from_firmware(&mut reader).map_err(|e| Error::io(WHAT, path, &e))?;
        let (tail, len) = reader.into_tail();
        if len > MAX_FIRMWARE_LEN {
            return Err(too_large(Size::MoreThan(MAX_FIRMWARE_LEN)));
        }
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

/// Hashes the direct-boot inputs the way QEMU fills the kernel hashes table:
/// an absent initrd hashes as empty, an absent cmdline as "". The kernel and
/// the initrd are hashed on two threads: SHA-256 of a large initrd is most
/// of the tool's run time.
pub fn kernel_hashes(
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: Option<&str>,
) -> Result<KernelHashes> {
    let (kernel, initrd) = std::thread::scope(|scope| {
        let initrd = scope.spawn(|| match initrd {
            Some(p) => sha256_file("initrd", p),
            None => Ok(kernel_hashes::empty_digest()),
        });
        let kernel = sha256_file("kernel", kernel);
        let initrd = initrd
            .join()
            .unwrap_or_else(|_| Err(Error::Unexpected("the initrd hashing thread failed".into())));
        (kernel, initrd)
    });
    Ok(KernelHashes {
        kernel: kernel?,
        initrd: initrd?,
        cmdline: kernel_hashes::cmdline_digest(cmdline.unwrap_or("").as_bytes()),
    })
}

/// Where the VMSA pages of an SEV-ES guest come from.
#[derive(Clone)]
pub enum VmsaSource {
    /// Pages the owner captured or built: one for the boot CPU, one for all others.
    Pages {
        bsp: Box<[u8; VMSA_LEN]>,
        ap: Option<Box<[u8; VMSA_LEN]>>,
    },
    /// Built here from the vCPU signature and the firmware's AP reset address.
    Built {
        config: VmsaConfig,
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
    pub kernel_table: Option<[u8; kernel_hashes::PADDED_TABLE_LEN]>,
    pub vmsa_bsp_sha256: Option<[u8; 32]>,
    pub vmsa_ap_sha256: Option<[u8; 32]>,
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
