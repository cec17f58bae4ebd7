//! The owner's files, read with every limit enforced while reading.
//!
//! Any input may be a pipe, a FIFO, /dev/stdin or a /proc file (owners pipe
//! keys in from a password manager), and those report a size of 0: every
//! size here is counted while reading, and every limit is enforced by
//! reading at most one byte more than it allows. Files that are hashed
//! (firmware, kernel, initrd) stream through the hashers.

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use crate::core::kernel_hashes::{self, KernelHashes};
use crate::core::measurement::sha256_reader;
use crate::error::{Error, Result};

/// No real OVMF image is anywhere near this; a larger file is a mistake.
pub const MAX_FIRMWARE_LEN: u64 = 64 * 1024 * 1024;

/// The size of an input as far as it is known: counted, or known only to be
/// over a limit because reading stopped one byte past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Read to the end: this many bytes.
    Exactly(u64),
    /// Reading stopped one byte past this limit.
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
    /// A regular file of non-zero size, read in place.
    File(File),
    /// Anything else (pipe, FIFO, /proc file), read into memory up to the limit.
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
