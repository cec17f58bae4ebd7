//! AMD's Key Distribution Service (KDS): fetches a VCEK (DER), an ASK/ASVK
//! + ARK `cert_chain` (PEM) or a CRL (DER) and keeps it in a cache directory.
//!
//! Nothing here decides whether a certificate is trustworthy: the caller
//! verifies what it gets against the built-in roots, so a mirror or the cache
//! can only make validation fail, never pass. What this module guarantees is
//! that a report for another TCB or chip never gets a cached VCEK for the
//! wrong one (the cache key is the whole URL path and query), that a file in
//! the cache is either complete or absent (atomic writes), that offline mode
//! never opens a connection, and that KDS rate limiting (HTTP 429) is waited
//! out only within a bound.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where KDS lives; `Options::base_url` replaces it for a mirror.
pub const DEFAULT_BASE_URL: &str = "https://kdsintf.amd.com";

/// The largest body accepted: a VCEK is about 1.3 KiB and a cert_chain about
/// 4.5 KiB, so anything near this is not a certificate.
const MAX_BODY: u64 = 256 * 1024;

/// Longest cache file name kept readable; longer keys are hashed (most file
/// systems stop at 255 bytes).
const MAX_NAME: usize = 200;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scheme, host and optional path prefix of KDS or a mirror of it.
    pub base_url: String,
    /// Never touch the network: the file must already be in the cache.
    pub offline: bool,
    /// Attempts in all, the first one included, while KDS answers 429.
    pub max_tries: u32,
    /// The most time spent waiting for Retry-After over all attempts; a
    /// longer wait fails at once rather than hanging the owner's script.
    pub max_wait: Duration,
    /// Wait after a 429 that gives no Retry-After in seconds.
    pub default_retry_after: Duration,
    /// TCP (and TLS) connection timeout.
    pub connect_timeout: Duration,
    /// Timeout for the response head and again for the body.
    pub read_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            base_url: DEFAULT_BASE_URL.to_string(),
            offline: false,
            max_tries: 3,
            max_wait: Duration::from_secs(10),
            default_retry_after: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(20),
        }
    }
}

/// Every way a fetch fails. Each message names the URL (or the cache path)
/// and what the owner can do.
#[derive(Debug)]
pub enum KdsError {
    /// The URL is not a KDS path this module can fetch or cache.
    BadUrl {
        /// The URL asked for.
        url: String,
        /// Why it cannot be fetched or cached.
        reason: String,
    },
    /// No cache directory given, and neither XDG_CACHE_HOME nor HOME is set.
    NoCacheDir,
    /// Offline mode and the cache lacks the file.
    NotCached {
        /// The URL asked for.
        url: String,
        /// The cache file it would be in.
        path: PathBuf,
    },
    /// The cache directory or file cannot be read or written.
    Cache {
        /// The cache directory or file.
        path: PathBuf,
        /// The operation that failed, with the I/O error.
        reason: String,
    },
    /// HTTP 404: KDS has no such certificate.
    NotFound {
        /// The URL asked for.
        url: String,
    },
    /// HTTP 429 on every attempt within the bound.
    RateLimited {
        /// The URL asked for.
        url: String,
        /// Attempts made, the first one included.
        tries: u32,
        /// Time already spent waiting between attempts.
        waited: Duration,
        /// The last answer's Retry-After (or the default), not waited for.
        retry_after: Duration,
    },
    /// Any other HTTP status.
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The connection or the response timed out.
    Timeout {
        /// The URL asked for.
        url: String,
        /// The HTTP client's error.
        reason: String,
    },
    /// The host could not be reached (name, connection, TLS, protocol).
    Network {
        /// The URL asked for.
        url: String,
        /// The HTTP client's error.
        reason: String,
    },
    /// A 200 answer that is not a certificate of the kind asked for.
    BadBody {
        /// The URL asked for.
        url: String,
        /// What is wrong with the body.
        reason: String,
    },
}

impl fmt::Display for KdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KdsError::BadUrl { url, reason } => {
                write!(f, "cannot fetch '{url}' from KDS: {reason}")
            }
            KdsError::NoCacheDir => write!(
                f,
                "no cache directory for KDS certificates: neither XDG_CACHE_HOME nor HOME is set; \
                 give a cache directory"
            ),
            KdsError::NotCached { url, path } => write!(
                f,
                "offline mode and {url} is not in the cache ('{}'); fetch it once online, or \
                 download it on a connected machine and give the file instead",
                path.display()
            ),
            KdsError::Cache { path, reason } => {
                write!(f, "KDS cache '{}': {reason}", path.display())
            }
            KdsError::NotFound { url } => write!(
                f,
                "KDS has no certificate at {url} (HTTP 404): no VCEK exists for this chip ID and \
                 TCB, or the product is wrong; check the report's CHIP_ID and REPORTED_TCB, or \
                 give the VCEK as a file"
            ),
            KdsError::RateLimited {
                url,
                tries,
                waited,
                retry_after,
            } => write!(
                f,
                "KDS refused {url} as rate limited (HTTP 429) on {tries} tries, after waiting \
                 {:.1} s in all (it asked for {} s more); try again later or give the VCEK as a \
                 file",
                waited.as_secs_f64(),
                retry_after.as_secs()
            ),
            KdsError::Status { url, status } => {
                write!(f, "KDS answered HTTP {status} for {url}")
            }
            KdsError::Timeout { url, reason } => write!(
                f,
                "KDS did not answer in time for {url} ({reason}); check the network, or use \
                 offline mode with the VCEK given as a file"
            ),
            KdsError::Network { url, reason } => write!(
                f,
                "cannot reach KDS for {url}: {reason}; check the network or the mirror URL, or \
                 give the VCEK as a file"
            ),
            KdsError::BadBody { url, reason } => {
                write!(f, "KDS answer for {url} is not a certificate: {reason}")
            }
        }
    }
}

impl std::error::Error for KdsError {}

impl From<KdsError> for crate::error::Error {
    /// Network trouble and missing files are usage errors (exit 2): the tool
    /// could not get an input, nothing was proven wrong.
    fn from(e: KdsError) -> Self {
        crate::error::Error::Usage(e.to_string())
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/virt-qemu-sev-validate/kds`,
/// else `$HOME/.cache/virt-qemu-sev-validate/kds`. Relative values are
/// ignored, as the XDG base directory specification says.
pub fn default_cache_dir() -> Result<PathBuf, KdsError> {
    let absolute = |v: std::ffi::OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    if let Some(base) = std::env::var_os("XDG_CACHE_HOME").and_then(absolute) {
        return Ok(base.join("virt-qemu-sev-validate").join("kds"));
    }
    if let Some(home) = std::env::var_os("HOME").and_then(absolute) {
        return Ok(home
            .join(".cache")
            .join("virt-qemu-sev-validate")
            .join("kds"));
    }
    Err(KdsError::NoCacheDir)
}

/// Path and query of a KDS URL: `url` is either a path (`/vcek/v1/...`) or
/// a full URL under `base` or under AMD's KDS (then rebased onto `base`).
fn path_and_query<'u>(url: &'u str, base: &str) -> Result<&'u str, KdsError> {
    let bad = |reason: &str| KdsError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = if url.starts_with('/') {
        url
    } else if let Some(r) = strip_base(url, base).or_else(|| strip_base(url, DEFAULT_BASE_URL)) {
        r
    } else {
        return Err(bad(&format!(
            "not a path (/vcek/v1/...) nor a URL under {base} or {DEFAULT_BASE_URL}"
        )));
    };
    if rest.contains('#') {
        return Err(bad("a fragment (#) has no place in a KDS URL"));
    }
    if rest
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii())
    {
        return Err(bad("spaces, control or non-ASCII characters in the URL"));
    }
    let path = rest.split('?').next().unwrap_or_default();
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err(bad("'.' or '..' path segments"));
    }
    if path.trim_matches('/').is_empty() {
        return Err(bad("no path after the host"));
    }
    Ok(rest)
}

/// `url` with `base` (scheme, host, optional prefix) removed, when it is
/// under it; the rest starts with '/'.
fn strip_base<'u>(url: &'u str, base: &str) -> Option<&'u str> {
    let rest = url.strip_prefix(base.trim_end_matches('/'))?;
    rest.starts_with('/').then_some(rest)
}

/// The cache file for a KDS path and query. The whole path and query make the
/// key, so a VCEK for one TCB or chip is never served for another. Readable
/// where the characters allow (`vcek/v1/Milan/<hwid>@blSPL=03&...`), else a
/// SHA-256 of the key.
pub fn cache_path(cache_dir: &Path, path_and_query: &str) -> PathBuf {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let seg_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.len() <= MAX_NAME
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    let query_ok = |q: &str| {
        q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'&' | b'-' | b'.'))
    };
    let readable =
        !segments.is_empty() && segments.iter().all(|s| seg_ok(s)) && query.is_none_or(query_ok);
    if readable {
        let (last, dirs) = segments.split_last().expect("not empty");
        let name = match query {
            Some(q) if !q.is_empty() => format!("{last}@{q}"),
            _ => last.to_string(),
        };
        if name.len() <= MAX_NAME {
            let mut p = cache_dir.to_path_buf();
            p.extend(dirs);
            return p.join(name);
        }
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(path_and_query.as_bytes());
    cache_dir.join("sha256").join(crate::core::hex(&digest))
}

/// Fetches the KDS file at `url` (a path such as
/// `/vcek/v1/Genoa/<hwid>?blSPL=..` or a full KDS URL), from the cache when it
/// is there, else from `options.base_url`, and caches it. `cache_dir` None
/// means [`default_cache_dir`].
pub fn fetch(url: &str, cache_dir: Option<&Path>, options: &Options) -> Result<Vec<u8>, KdsError> {
    get(url, cache_dir, options, true)
}

/// As [`fetch`], but never from the cache, whose file the answer replaces:
/// for a cached CRL past its nextUpdate. Offline, it fails as a cache miss.
pub fn fetch_fresh(
    url: &str,
    cache_dir: Option<&Path>,
    options: &Options,
) -> Result<Vec<u8>, KdsError> {
    get(url, cache_dir, options, false)
}

fn get(
    url: &str,
    cache_dir: Option<&Path>,
    options: &Options,
    cached: bool,
) -> Result<Vec<u8>, KdsError> {
    let base = options.base_url.trim_end_matches('/');
    let pq = path_and_query(url, base)?;
    let full = format!("{base}{pq}");
    let dir = match cache_dir {
        Some(d) => d.to_path_buf(),
        None => default_cache_dir()?,
    };
    let file = cache_path(&dir, pq);
    if cached && file.exists() {
        // Through the bounded reader, at most what a download may be.
        let limit = MAX_BODY as usize;
        return crate::input::read_within("KDS cache file", &file, limit, |size| {
            crate::error::Error::Usage(format!(
                "the file is {size}; a KDS answer is at most {limit} bytes: delete the file"
            ))
        })
        .map(|body| body.to_vec())
        .map_err(|e| KdsError::Cache {
            path: file.clone(),
            reason: e.to_string(),
        });
    }
    if options.offline {
        return Err(KdsError::NotCached {
            url: full,
            path: file,
        });
    }
    let body = download(&full, options)?;
    check_body(&full, pq, &body)?;
    store(&file, &body)?;
    Ok(body)
}

/// One GET, repeated while KDS answers 429 and the bound allows.
fn download(url: &str, options: &Options) -> Result<Vec<u8>, KdsError> {
    let mut config = ureq::Agent::config_builder();
    // HTTPS_PROXY and friends apply (ureq reads them), except to a mirror on
    // this machine, which no proxy can reach.
    if is_loopback(url) {
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config
        .http_status_as_error(false)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_recv_response(Some(options.read_timeout))
        .timeout_recv_body(Some(options.read_timeout))
        .max_redirects(3)
        .user_agent(concat!(
            "virt-qemu-sev-validate/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .into();
    let mut waited = Duration::ZERO;
    let mut tries = 0;
    loop {
        tries += 1;
        let mut resp = agent.get(url).call().map_err(|e| transport(url, e))?;
        match resp.status().as_u16() {
            200 => {
                return resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY)
                    .read_to_vec()
                    .map_err(|e| transport(url, e))
            }
            404 => {
                return Err(KdsError::NotFound {
                    url: url.to_string(),
                })
            }
            429 => {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(options.default_retry_after);
                if tries >= options.max_tries || waited + retry_after > options.max_wait {
                    return Err(KdsError::RateLimited {
                        url: url.to_string(),
                        tries,
                        waited,
                        retry_after,
                    });
                }
                std::thread::sleep(retry_after);
                waited += retry_after;
            }
            status => {
                return Err(KdsError::Status {
                    url: url.to_string(),
                    status,
                })
            }
        }
    }
}

/// The URL's host is this machine (localhost, 127.0.0.0/8, ::1).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn transport(url: &str, e: ureq::Error) -> KdsError {
    match e {
        ureq::Error::Timeout(t) => KdsError::Timeout {
            url: url.to_string(),
            reason: t.to_string(),
        },
        ureq::Error::BodyExceedsLimit(_) => KdsError::BadBody {
            url: url.to_string(),
            reason: format!("longer than {MAX_BODY} bytes"),
        },
        other => KdsError::Network {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Refuses a body that cannot be what the path asks for, so an error page
/// served with status 200 (captive portals, broken mirrors) is not cached.
fn check_body(url: &str, pq: &str, body: &[u8]) -> Result<(), KdsError> {
    let bad = |reason: &str| KdsError::BadBody {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let path = pq.split('?').next().unwrap_or_default();
    if path.ends_with("/cert_chain") {
        if !body.starts_with(b"-----BEGIN CERTIFICATE-----") {
            return Err(bad(
                "expected PEM certificates (-----BEGIN CERTIFICATE-----)",
            ));
        }
    } else if path.ends_with("/crl") {
        if body.first() != Some(&0x30) {
            return Err(bad("expected a DER CRL (a SEQUENCE, byte 0x30)"));
        }
    } else if body.first() != Some(&0x30) || body.len() < 64 {
        return Err(bad("expected a DER certificate (a SEQUENCE, byte 0x30)"));
    }
    Ok(())
}

/// Writes the file whole or not at all: a temporary file in the same
/// directory, synced, then renamed over the name.
fn store(file: &Path, body: &[u8]) -> Result<(), KdsError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let fail = |path: &Path, what: &str, e: &dyn fmt::Display| KdsError::Cache {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    fs::create_dir_all(dir).map_err(|e| fail(dir, "cannot create the directory", &e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".kds-")
        .tempfile_in(dir)
        .map_err(|e| fail(dir, "cannot create a file", &e))?;
    tmp.write_all(body)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| fail(tmp.path(), "cannot write", &e))?;
    tmp.persist(file)
        .map_err(|e| fail(file, "cannot rename into place", &e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_keeps_tcb_and_chip_apart() {
        let d = Path::new("/c");
        let a = cache_path(
            d,
            "/vcek/v1/Milan/abcd?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115",
        );
        let b = cache_path(
            d,
            "/vcek/v1/Milan/abcd?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=116",
        );
        let c = cache_path(
            d,
            "/vcek/v1/Milan/abce?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115",
        );
        let g = cache_path(
            d,
            "/vcek/v1/Genoa/abcd?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115",
        );
        assert_eq!(
            a,
            Path::new("/c/vcek/v1/Milan/abcd@blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115")
        );
        assert!(a != b && a != c && a != g && b != c);
        assert_eq!(
            cache_path(d, "/vcek/v1/Turin/cert_chain"),
            Path::new("/c/vcek/v1/Turin/cert_chain")
        );
    }

    #[test]
    fn odd_keys_are_hashed_inside_the_cache() {
        let d = Path::new("/c");
        for pq in [
            "/a@b",
            "/x?a%20b",
            &format!("/{}", "f".repeat(300)),
            "/.hidden",
        ] {
            let p = cache_path(d, pq);
            assert!(p.starts_with("/c/sha256"), "{pq} -> {}", p.display());
            assert_eq!(p.file_name().unwrap().len(), 64);
        }
        assert_ne!(cache_path(d, "/a@b"), cache_path(d, "/a@c"));
    }

    #[test]
    fn urls_are_paths_under_the_base() {
        let b = "http://127.0.0.1:9";
        assert_eq!(
            path_and_query("/vcek/v1/Milan/x", b).unwrap(),
            "/vcek/v1/Milan/x"
        );
        assert_eq!(
            path_and_query("https://kdsintf.amd.com/vcek/v1/Milan/x?a=1", b).unwrap(),
            "/vcek/v1/Milan/x?a=1"
        );
        assert_eq!(
            path_and_query("http://127.0.0.1:9/vcek/v1/Turin/cert_chain", b).unwrap(),
            "/vcek/v1/Turin/cert_chain"
        );
        for bad in [
            "vcek/v1",
            "http://elsewhere.example/vcek/v1/Milan/x",
            "https://kdsintf.amd.com.evil/x",
            "/vcek/../../etc/passwd",
            "/vcek/v1/Milan/x y",
            "/",
            "/x#frag",
        ] {
            let e = path_and_query(bad, b).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for u in [
            "http://127.0.0.1:8080/vcek",
            "http://localhost/x",
            "http://[::1]:9/x",
            "http://127.1.2.3/",
        ] {
            assert!(is_loopback(u), "{u}");
        }
        for u in [
            "https://kdsintf.amd.com/vcek",
            "http://10.0.0.1/x",
            "http://localhost.example/x",
            "http://[2001:db8::1]/",
        ] {
            assert!(!is_loopback(u), "{u}");
        }
    }

    #[test]
    fn bodies_that_are_not_certificates_are_refused() {
        let u = "u";
        assert!(check_body(u, "/vcek/v1/Milan/cert_chain", b"<html>busy</html>").is_err());
        assert!(check_body(u, "/vcek/v1/Milan/x?a=1", b"<html>busy</html>").is_err());
        assert!(check_body(u, "/vcek/v1/Milan/x?a=1", &[0x30; 16]).is_err());
        assert!(check_body(u, "/vcek/v1/Milan/x?a=1", &[0x30; 1000]).is_ok());
        assert!(check_body(
            u,
            "/vcek/v1/Milan/cert_chain",
            b"-----BEGIN CERTIFICATE-----\nMII"
        )
        .is_ok());
    }
}
