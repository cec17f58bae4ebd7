//! Step 1 of the launch digest: the firmware image as NORMAL pages ending at
//! 4 GiB, read a batch at a time and hashed on a few threads.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc;
use std::thread::Scope;

use super::{sha384, GuestContext, Ld, PageType, SnpError, FOUR_GIB, PAGE_LEN};

/// The GPA at which a firmware image of `len` bytes is mapped: it ends at 4 GiB.
pub fn firmware_gpa(len: u64) -> Result<u64, SnpError> {
    if len == 0 || len % PAGE_LEN as u64 != 0 || len > FOUR_GIB {
        return Err(SnpError::FirmwareSize(len));
    }
    Ok(FOUR_GIB - len)
}

/// The "OVMF hash": the launch digest after the firmware image (`len` bytes
/// read from `reader`) is measured as NORMAL pages ending at 4 GiB. The image
/// is read a batch of pages at a time, never held whole.
pub fn ovmf_hash<R: Read>(reader: R, len: u64) -> Result<Ld, SnpError> {
    let mut gctx = GuestContext::new();
    measure_firmware(&mut gctx, reader, len)?;
    Ok(gctx.ld())
}

/// Pages in one batch: what one hashing thread takes at a time (256 KiB).
const BATCH_PAGES: usize = 64;
/// Below this many pages the image is hashed on the calling thread alone:
/// starting threads would cost more than they save.
const PARALLEL_MIN_PAGES: usize = 2 * BATCH_PAGES;
/// The most hashing threads worth starting: SHA-384 of 4 MiB is a few ms.
pub const MAX_HASH_THREADS: usize = 4;

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the next `pages` pages into `buf` (resized to fit), or says where the
/// image ended.
fn read_batch<R: Read>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    pages: usize,
    off: u64,
    len: u64,
) -> Result<(), SnpError> {
    buf.resize(pages * PAGE_LEN, 0);
    let got = read_full(reader, buf)?;
    if got < buf.len() {
        return Err(SnpError::FirmwareTruncated {
            read: off + got as u64,
            len,
        });
    }
    Ok(())
}

/// Hashing threads for the firmware's pages when the caller has no other
/// work running: the machine's cores, at most [`MAX_HASH_THREADS`].
pub fn default_hash_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_HASH_THREADS)
}

/// Measures the firmware image (`len` bytes from `reader`) into `gctx`, on
/// [`default_hash_threads`] threads.
pub fn measure_firmware<R: Read>(
    gctx: &mut GuestContext,
    reader: R,
    len: u64,
) -> Result<(), SnpError> {
    measure_firmware_on(gctx, reader, len, default_hash_threads())
}

/// Measures the firmware image (`len` bytes from `reader`) into `gctx`, with
/// `threads` threads hashing pages. The image is read a batch at a time and
/// never held whole. Each page's own SHA-384 is independent of the others, so
/// batches go to the hashing threads while this thread reads the next ones;
/// only the PAGE_INFO chain runs in order, here. A caller hashing something
/// else at the same time (a kernel) passes fewer threads so the two do not
/// compete for the same cores.
pub fn measure_firmware_on<R: Read>(
    gctx: &mut GuestContext,
    reader: R,
    len: u64,
    threads: usize,
) -> Result<(), SnpError> {
    let mut gpa = firmware_gpa(len)?;
    hash_pages(reader, len, threads, &mut |d| {
        gctx.update(PageType::Normal, gpa, d);
        gpa += PAGE_LEN as u64;
    })
}

/// The SHA-384 of each page of an image of `len` bytes (a non-zero multiple
/// of 4096, at most 4 GiB) read from `reader`, in order, hashed on `threads`
/// threads: for an image whose GPA is not known yet, or is tried at several
/// (the SVSM image below OVMF_VARS). 48 bytes a page are kept, never the pages.
pub fn page_digests<R: Read>(reader: R, len: u64, threads: usize) -> Result<Vec<Ld>, SnpError> {
    firmware_gpa(len)?;
    let mut out = Vec::with_capacity((len / PAGE_LEN as u64) as usize);
    hash_pages(reader, len, threads, &mut |d| out.push(*d))?;
    Ok(out)
}

/// Hands `sink` the SHA-384 of each of the `len / 4096` pages read from
/// `reader`, in order, hashed on up to `threads` threads.
fn hash_pages<R: Read>(
    reader: R,
    len: u64,
    threads: usize,
    sink: &mut dyn FnMut(&Ld),
) -> Result<(), SnpError> {
    let total_pages = (len / PAGE_LEN as u64) as usize;
    let threads = threads.clamp(1, MAX_HASH_THREADS);
    if threads == 1 || total_pages < PARALLEL_MIN_PAGES {
        hash_serially(reader, len, sink)
    } else {
        hash_in_parallel(reader, len, threads, sink)
    }
}

/// Hashes the image's pages on the calling thread alone.
fn hash_serially<R: Read>(
    mut reader: R,
    len: u64,
    sink: &mut dyn FnMut(&Ld),
) -> Result<(), SnpError> {
    let mut buf = Vec::with_capacity(BATCH_PAGES * PAGE_LEN);
    let mut off = 0u64;
    while off < len {
        let pages = ((len - off) as usize / PAGE_LEN).min(BATCH_PAGES);
        read_batch(&mut reader, &mut buf, pages, off, len)?;
        for page in buf.chunks_exact(PAGE_LEN) {
            sink(&sha384(page));
        }
        off += buf.len() as u64;
    }
    Ok(())
}

/// A batch of pages and, once hashed, their digests.
type Done = (Vec<u8>, Vec<Ld>);

/// Starts `threads` page hashing threads in `scope`: their job queues and
/// their result queues. Each thread ends when its job queue is dropped.
fn spawn_hashers<'scope>(
    scope: &'scope Scope<'scope, '_>,
    threads: usize,
) -> (Vec<mpsc::Sender<Done>>, Vec<mpsc::Receiver<Done>>) {
    // One job queue and one result queue per thread: batches go out
    // round-robin and come back in the order they were sent, so the
    // chain needs no reordering.
    let mut jobs = Vec::with_capacity(threads);
    let mut results = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (job_tx, job_rx) = mpsc::channel::<Done>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        scope.spawn(move || {
            for (buf, mut digests) in job_rx {
                digests.clear();
                digests.extend(buf.chunks_exact(PAGE_LEN).map(sha384));
                if done_tx.send((buf, digests)).is_err() {
                    break;
                }
            }
        });
        jobs.push(job_tx);
        results.push(done_rx);
    }
    (jobs, results)
}

/// Hashes the image's pages on `threads` threads while this one reads the
/// next batches and hands the digests to `sink` in order.
fn hash_in_parallel<R: Read>(
    mut reader: R,
    len: u64,
    threads: usize,
    sink: &mut dyn FnMut(&Ld),
) -> Result<(), SnpError> {
    std::thread::scope(|scope| -> Result<(), SnpError> {
        let (jobs, results) = spawn_hashers(scope, threads);
        let stopped = || io::Error::other("a page hashing thread stopped");
        // Two batches in flight per thread: one being hashed, one waiting,
        // so no thread idles while this one reads. That bounds memory to
        // 2 * threads * BATCH_PAGES pages.
        let mut in_flight: VecDeque<usize> = VecDeque::with_capacity(2 * threads);
        // Buffers come back with their digests and are reused: the hashing
        // threads never allocate.
        let mut spare: Vec<Done> = Vec::new();
        let mut chain_oldest =
            |in_flight: &mut VecDeque<usize>, spare: &mut Vec<Done>| -> Result<(), SnpError> {
                if let Some(t) = in_flight.pop_front() {
                    let (buf, digests) = results[t].recv().map_err(|_| stopped())?;
                    for d in &digests {
                        sink(d);
                    }
                    spare.push((buf, digests));
                }
                Ok(())
            };
        let mut off = 0u64;
        let mut next = 0usize;
        while off < len {
            if in_flight.len() == 2 * threads {
                chain_oldest(&mut in_flight, &mut spare)?;
            }
            let pages = ((len - off) as usize / PAGE_LEN).min(BATCH_PAGES);
            let (mut buf, digests) = spare.pop().unwrap_or_else(|| {
                (
                    Vec::with_capacity(BATCH_PAGES * PAGE_LEN),
                    Vec::with_capacity(BATCH_PAGES),
                )
            });
            read_batch(&mut reader, &mut buf, pages, off, len)?;
            off += buf.len() as u64;
            jobs[next].send((buf, digests)).map_err(|_| stopped())?;
            in_flight.push_back(next);
            next = (next + 1) % threads;
        }
        while !in_flight.is_empty() {
            chain_oldest(&mut in_flight, &mut spare)?;
        }
        Ok(())
        // Returning drops the job queues, which ends the hashing threads.
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_is_streamed_as_pages_ending_at_4gib() {
        let image: Vec<u8> = (0..3 * PAGE_LEN).map(|i| (i * 7) as u8).collect();
        let mut want = GuestContext::new();
        for (i, p) in image.chunks(PAGE_LEN).enumerate() {
            want.update_normal_page(0xFFFF_D000 + (i * PAGE_LEN) as u64, p.try_into().unwrap());
        }
        assert_eq!(ovmf_hash(&image[..], 3 * 4096).unwrap(), want.ld());
        assert!(matches!(
            ovmf_hash(&image[..], 4 * 4096),
            Err(SnpError::FirmwareTruncated { read: 12288, .. })
        ));
        assert!(matches!(
            ovmf_hash(&image[..100], 100),
            Err(SnpError::FirmwareSize(100))
        ));
        assert!(matches!(
            ovmf_hash(&[][..], 0),
            Err(SnpError::FirmwareSize(0))
        ));
    }

    #[test]
    fn chunked_parallel_hashing_is_the_page_by_page_chain() {
        // 300 pages: several chunks, the last one partial, hashed on several threads.
        let image: Vec<u8> = (0..300 * PAGE_LEN)
            .map(|i| ((i / 7) ^ (i / PAGE_LEN)) as u8)
            .collect();
        let len = image.len() as u64;
        let mut want = GuestContext::new();
        for (i, p) in image.chunks(PAGE_LEN).enumerate() {
            want.update_normal_page(
                (1u64 << 32) - len + (i * PAGE_LEN) as u64,
                p.try_into().unwrap(),
            );
        }
        assert_eq!(ovmf_hash(&image[..], len).unwrap(), want.ld());
        // A reader that yields a few bytes at a time gives the same.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        assert_eq!(ovmf_hash(Dribble(&image), len).unwrap(), want.ld());
        // Every thread count, read size and short image: tests/it/proptest_core.rs,
        // against a chain written there from the spec.
        let mut gctx = GuestContext::new();
        measure_firmware_on(&mut gctx, &image[..], len, 1).unwrap();
        assert_eq!(gctx.ld(), want.ld(), "the single-thread path");
        // The page digests alone, on several threads and on one.
        let each: Vec<Ld> = image.chunks(PAGE_LEN).map(sha384).collect();
        assert_eq!(page_digests(&image[..], len, 3).unwrap(), each);
        assert_eq!(page_digests(Dribble(&image), len, 1).unwrap(), each);
        assert!(matches!(
            page_digests(&image[..4096], 8192, 2),
            Err(SnpError::FirmwareTruncated { read: 4096, .. })
        ));
    }
}
