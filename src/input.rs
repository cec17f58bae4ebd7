//! The owner's files, read with every limit enforced while reading: the one
//! reader every input goes through.
//!
//! Any input may be a regular file, a pipe, a FIFO, a device, /dev/stdin, a
//! /proc file, or `-` for standard input (owners pipe keys in from a
//! password manager). Pipes and devices report a size of 0, so every size
//! here is counted while reading, and every limit is enforced by reading at
//! most one byte more than it allows ([`read_within`], [`open_within`]): an
//! endless /dev/zero or a 2 GB pipe costs at most its limit in memory, and
//! a regular file whose metadata says it is too large is refused unread.
//! Files that are hashed (firmware, kernel, initrd) stream through the
//! hashers, bounded the same way.

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom, Take};
use std::path::Path;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::core::kernel_hashes::{self, KernelHashes};
use crate::core::measurement::sha256_reader;
use crate::error::{Error, Result};

/// No real OVMF image is anywhere near this; a larger file is a mistake.
pub const MAX_FIRMWARE_LEN: u64 = 64 * 1024 * 1024;
/// The largest kernel hashed: bzImages are tens of MiB, unified kernel
/// images with an initrd inside a few hundred at most.
pub const MAX_KERNEL_LEN: u64 = 256 * 1024 * 1024;
/// The largest initrd hashed: QEMU copies it into the guest's memory below
/// 4 GiB, and distributions' initrds are tens of MiB.
pub const MAX_INITRD_LEN: u64 = 512 * 1024 * 1024;

/// The path that means standard input.
pub const STDIN: &str = "-";

/// The size of an input as far as it is known: counted, or known only to be
/// over a limit because reading stopped one byte past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Read to the end (or said by a regular file's metadata): this many bytes.
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

/// Whether `path` is `-`, standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// The input that read standard input in this run, if any.
static STDIN_READER: Mutex<Option<String>> = Mutex::new(None);

/// Standard input is read once: the second input given as `-` is a usage
/// error naming both, never an empty file.
fn claim_stdin(what: &str) -> Result<()> {
    let mut by = STDIN_READER.lock().unwrap_or_else(|p| p.into_inner());
    match by.as_deref() {
        None => {
            *by = Some(what.to_string());
            Ok(())
        }
        Some(first) => Err(Error::Usage(format!(
            "standard input ('-') is given for both {first} and {what}, but it can be read only once; give all but one of them as files"
        ))),
    }
}

/// Refuses two of `inputs` (what, path) given as `-`: called by each command
/// before it reads anything, so the usage error comes first.
pub fn at_most_one_stdin<'a>(inputs: impl IntoIterator<Item = (&'a str, &'a Path)>) -> Result<()> {
    let mut first: Option<&str> = None;
    for (what, path) in inputs {
        if !is_stdin(path) {
            continue;
        }
        if let Some(first) = first {
            return Err(Error::Usage(format!(
                "standard input ('-') is given for both {first} and {what}, but it can be read only once; give all but one of them as files"
            )));
        }
        first = Some(what);
    }
    Ok(())
}

/// An opened input: a file, or standard input for `-`.
pub enum Input {
    /// A file (regular, FIFO, device, /proc file, /dev/fd/N).
    File(File),
    /// Standard input, named `-`.
    Stdin(std::io::Stdin),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::File(f) => f.read(buf),
            Input::Stdin(s) => s.read(buf),
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

fn directory(what: &str, path: &Path) -> Error {
    Error::Usage(format!(
        "{what} '{}' is a directory; give the path of a file",
        path.display()
    ))
}

/// Opens a file the user named (`-`: standard input), refusing directories
/// with a clear message.
///
/// The size returned is what a regular file's metadata says, and 0 for
/// anything else: a hint for refusing a huge file before reading it, never
/// the size of what is read (pipes, FIFOs and /proc files say 0).
pub fn open_input(what: &str, path: &Path) -> Result<(Input, u64)> {
    if is_stdin(path) {
        claim_stdin(what)?;
        return Ok((Input::Stdin(std::io::stdin()), 0));
    }
    let file = File::open(path).map_err(|e| Error::io(what, path, &e))?;
    let meta = file.metadata().map_err(|e| Error::io(what, path, &e))?;
    if meta.is_dir() {
        return Err(directory(what, path));
    }
    let hint = if meta.is_file() { meta.len() } else { 0 };
    Ok((Input::File(file), hint))
}

/// Checks that a file the user named exists and is not a directory, without
/// opening it when it is a pipe or a FIFO: opening and closing a FIFO would
/// lose what its writer sends, and the file is read later. `-` (standard
/// input) is read later too.
pub fn check_input(what: &str, path: &Path) -> Result<()> {
    if is_stdin(path) {
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(what, path, &e))?;
    if meta.is_file() {
        File::open(path).map_err(|e| Error::io(what, path, &e))?;
    } else if meta.is_dir() {
        return Err(directory(what, path));
    }
    Ok(())
}

/// The usual refusal of an input over its limit.
fn over_limit(what: &str, path: &Path, limit: u64, size: Size) -> Error {
    Error::Usage(format!(
        "{what} '{}' is {size}; the limit for the {what} is {limit} bytes, so this is not one: check the path",
        path.display()
    ))
}

/// Reads a whole input of at most `limit` bytes, refusing a larger one with
/// `WHAT 'PATH' is more than LIMIT bytes; ...` (a usage error, exit 2).
pub fn read_bounded(what: &str, path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>> {
    read_within(what, path, limit, |size| {
        over_limit(what, path, limit as u64, size)
    })
}

/// The reader: a whole input of at most `limit` bytes, into a buffer that
/// is wiped (inputs hold keys and secrets). A regular file whose metadata
/// says it is larger is refused unread; anything else is read at most
/// `limit + 1` bytes, into a buffer allocated once (so growing it leaves no
/// unwiped copies), and refused when that extra byte came. `over` says
/// what is wrong and what to do, given the size as far as it is known.
pub fn read_within(
    what: &str,
    path: &Path,
    limit: usize,
    over: impl Fn(Size) -> Error,
) -> Result<Zeroizing<Vec<u8>>> {
    let (input, hint) = open_input(what, path)?;
    read_opened(what, path, (input, hint), limit, over)
}

/// [`read_within`] on an input already opened, with its size hint.
fn read_opened(
    what: &str,
    path: &Path,
    (input, hint): (Input, u64),
    limit: usize,
    over: impl Fn(Size) -> Error,
) -> Result<Zeroizing<Vec<u8>>> {
    if hint > limit as u64 {
        return Err(over(Size::Exactly(hint)));
    }
    let capacity = if hint > 0 { hint as usize } else { limit };
    let buf = read_limited(input, limit, capacity).map_err(|e| Error::io(what, path, &e))?;
    if buf.len() > limit {
        return Err(over(Size::MoreThan(limit as u64)));
    }
    Ok(buf)
}

/// The one read of a whole input, for callers that open it themselves (a
/// guest kernel's files, whose errors say more than a path's): at most
/// `limit + 1` bytes, into a wiped buffer allocated once for `capacity + 1`
/// (so growing it leaves no unwiped copies). More than `limit` bytes read
/// means the input is over the limit: the caller refuses it.
pub fn read_limited<R: Read>(
    reader: R,
    limit: usize,
    capacity: usize,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(capacity.min(limit) + 1));
    reader.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads a small file that must be exactly `len` bytes long.
pub fn read_exact_file(what: &str, path: &Path, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let wrong = |size: Size| {
        Error::Usage(format!(
            "{what} '{}' must be exactly {len} bytes, but it is {size}",
            path.display()
        ))
    };
    let buf = read_within(what, path, len, wrong)?;
    if buf.len() != len {
        return Err(wrong(Size::Exactly(buf.len() as u64)));
    }
    Ok(buf)
}

/// An input streamed (hashed) rather than held: it yields at most
/// `limit + 1` bytes and counts them, so [`Stream::finish`] can refuse one
/// over its limit once it has been read.
pub struct Stream<'a> {
    inner: Take<Input>,
    limit: u64,
    total: u64,
    over: Box<dyn Fn(Size) -> Error + Send + 'a>,
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        Ok(n)
    }
}

impl Stream<'_> {
    /// The size read, or `over`'s error when it is over the limit.
    pub fn finish(self) -> Result<u64> {
        if self.total > self.limit {
            return Err((self.over)(Size::MoreThan(self.limit)));
        }
        Ok(self.total)
    }
}

/// Opens an input to stream, bounded like [`read_within`]: a regular file
/// whose metadata says it is over `limit` is refused unread, and anything
/// else stops one byte past it.
pub fn open_within<'a>(
    what: &str,
    path: &Path,
    limit: u64,
    over: impl Fn(Size) -> Error + Send + 'a,
) -> Result<Stream<'a>> {
    let (input, hint) = open_input(what, path)?;
    if hint > limit {
        return Err(over(Size::Exactly(hint)));
    }
    Ok(Stream {
        inner: input.take(limit + 1),
        limit,
        total: 0,
        over: Box::new(over),
    })
}

/// The length of an input whose bytes do not matter (the OVMF_VARS file
/// beside an SVSM image): a regular file's from its metadata, unread (the
/// caller bounds the value); anything else (a pipe, FIFO, `-`, /proc file)
/// counted while it is read into nothing, and refused one byte past `limit`.
pub fn input_len(
    what: &str,
    path: &Path,
    limit: u64,
    over: impl Fn(Size) -> Error + Send,
) -> Result<u64> {
    let (input, hint) = open_input(what, path)?;
    if hint > 0 {
        return Ok(hint);
    }
    let mut s = Stream {
        inner: input.take(limit + 1),
        limit,
        total: 0,
        over: Box::new(over),
    };
    std::io::copy(&mut s, &mut std::io::sink()).map_err(|e| Error::io(what, path, &e))?;
    s.finish()
}

/// SHA-256 of a file of at most `limit` bytes, streamed.
pub fn sha256_file(what: &str, path: &Path, limit: u64) -> Result<[u8; 32]> {
    let mut s = open_within(what, path, limit, |size| {
        over_limit(what, path, limit, size)
    })?;
    let digest = sha256_reader(&mut s).map_err(|e| Error::io(what, path, &e))?;
    s.finish()?;
    Ok(digest)
}

/// An input that can be read more than once: a regular file, or, for a
/// pipe, FIFO, device or /proc file, its content read into memory under a
/// limit.
pub enum SeekableInput {
    /// A regular file of non-zero size, read in place.
    File(File),
    /// Anything else (pipe, FIFO, /proc file), read into memory up to the limit.
    Memory(Cursor<Zeroizing<Vec<u8>>>),
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
/// place (its metadata says its size; one over `limit` is refused unread);
/// anything else is read into memory by [`read_within`]. `over` refuses a
/// size over `limit`.
pub fn open_seekable(
    what: &str,
    path: &Path,
    limit: u64,
    over: impl Fn(Size) -> Error,
) -> Result<(SeekableInput, u64)> {
    let opened = open_input(what, path)?;
    // Regular files of size 0 include /proc files: those are read whole.
    // Read from the handle opened: a FIFO opened twice loses its writer.
    let opened = match opened {
        (Input::File(file), hint) if hint > 0 => {
            if hint > limit {
                return Err(over(Size::Exactly(hint)));
            }
            return Ok((SeekableInput::File(file), hint));
        }
        other => other,
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX - 1);
    let data = read_opened(what, path, opened, limit, over)?;
    let len = data.len() as u64;
    Ok((SeekableInput::Memory(Cursor::new(data)), len))
}

/// Hashes the direct-boot inputs the way QEMU fills the kernel hashes table:
/// an absent initrd hashes as empty, an absent cmdline as "". The kernel and
/// the initrd are hashed on two threads: SHA-256 of a large initrd is most
/// of the tool's run time. Each stops at its limit while reading.
pub fn kernel_hashes(
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: Option<&str>,
) -> Result<KernelHashes> {
    let (kernel, initrd) = std::thread::scope(|scope| {
        let initrd = scope.spawn(|| match initrd {
            Some(p) => sha256_file("initrd", p, MAX_INITRD_LEN),
            None => Ok(kernel_hashes::empty_digest()),
        });
        let kernel = sha256_file("kernel", kernel, MAX_KERNEL_LEN);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file_of(len: usize) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![7u8; len]).unwrap();
        f
    }

    #[test]
    fn the_limit_is_inclusive_and_one_byte_more_is_refused() {
        let at = file_of(100);
        assert_eq!(read_bounded("report", at.path(), 100).unwrap().len(), 100);
        let over = file_of(101);
        let e = read_bounded("report", over.path(), 100).unwrap_err();
        assert_eq!(e.exit_code() as i32, 2);
        assert!(
            e.to_string()
                .contains("is 101 bytes; the limit for the report is 100 bytes"),
            "{e}"
        );
        // A device says no size: the limit holds while reading.
        let e = read_bounded("report", Path::new("/dev/zero"), 100).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("report '/dev/zero' is more than 100 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_stream_stops_one_byte_past_its_limit() {
        let mut s = open_within("kernel", Path::new("/dev/zero"), 1000, |size| {
            Error::Usage(format!("over: {size}"))
        })
        .unwrap();
        let mut sink = Vec::new();
        s.read_to_end(&mut sink).unwrap();
        assert_eq!(sink.len(), 1001);
        assert_eq!(
            s.finish().unwrap_err().to_string(),
            "over: more than 1000 bytes"
        );
        let at = file_of(1000);
        let mut s =
            open_within("kernel", at.path(), 1000, |_| Error::Usage(String::new())).unwrap();
        std::io::copy(&mut s, &mut std::io::sink()).unwrap();
        assert_eq!(s.finish().unwrap(), 1000);
    }

    #[test]
    fn only_one_input_may_be_standard_input() {
        let (a, b, c) = (Path::new("-"), Path::new("x"), Path::new("-"));
        assert!(at_most_one_stdin([("--vcek", a), ("--tik", b)]).is_ok());
        let e = at_most_one_stdin([("--vcek", a), ("--tik", b), ("--tek", c)]).unwrap_err();
        assert!(e.to_string().contains("both --vcek and --tek"), "{e}");
        assert!(is_stdin(Path::new("-")) && !is_stdin(Path::new("./-")));
    }
}
