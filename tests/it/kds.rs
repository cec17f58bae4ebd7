//! KDS fetching (src/source/kds.rs) against a stand-in KDS on loopback
//! (tests/sim/kds_server.py) that serves the real vector certificates, and
//! answers 404, 429 and HTML on demand. The URLs are the ones rebuilt from
//! each report in ../shared/snp-vectors/EXPECTED.json (`kds_vcek_url`), not
//! made by our code. The real KDS is never contacted.
#![cfg(feature = "kds")]

use crate::common;
use crate::common::snp_sim;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sev_validate::source::kds::{self, KdsError, Options};
use sha2::{Digest, Sha256};

const AMD: &str = "https://kdsintf.amd.com";

fn snp_vectors(test: &str) -> Option<PathBuf> {
    common::snp_vectors_dir(test, "SNP_VECTORS_DIR")
}

/// The stand-in KDS: a python3 process on a free loopback port, ended on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(vectors: &Path, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/kds_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg("--vectors")
            .arg(vectors)
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/sim/kds_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("kds_server.py said {line:?}"));
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    /// The requests the server answered, one "GET <path> <status>" each.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn options(&self) -> Options {
        Options {
            base_url: self.base.clone(),
            ..Options::default()
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (set name, KDS VCEK URL on AMD's host, SHA-256 of the VCEK's DER) for
/// every VCEK set.
fn vcek_urls(vectors: &Path) -> Vec<(String, String, String)> {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(vectors.join("EXPECTED.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for (name, set) in expected.as_object().unwrap() {
        if let Some(url) = set["kds_vcek_url"].as_str() {
            out.push((
                name.clone(),
                url.to_string(),
                set["vek"]["sha256"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert_eq!(
        out.len(),
        8,
        "eight VCEK sets (the ninth is signed by a VLEK)"
    );
    out
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Every VCEK set: the first fetch downloads (mirror base, AMD's URL rebased
/// onto it), the second comes from the cache with no request, and the bytes
/// are the vector's VCEK.
#[test]
fn vceks_are_fetched_once_then_served_from_the_cache() {
    let Some(vectors) = snp_vectors("vceks_are_fetched_once_then_served_from_the_cache") else {
        return;
    };
    let server = Server::start(&vectors, &[]);
    let cache = tempfile::tempdir().unwrap();
    let opts = server.options();
    let urls = vcek_urls(&vectors);
    for (i, (name, url, sha)) in urls.iter().enumerate() {
        let body =
            kds::fetch(url, Some(cache.path()), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&sha256_hex(&body), sha, "{name}");
        assert_eq!(server.requests().len(), i + 1, "{name}: one request");
        // The same path given without the host, as a caller may.
        let path = url.strip_prefix(AMD).unwrap();
        let again = kds::fetch(path, Some(cache.path()), &opts).unwrap();
        assert_eq!(again, body, "{name}");
        assert_eq!(
            server.requests().len(),
            i + 1,
            "{name}: served from the cache"
        );
        // Offline, the cached copy is enough.
        let offline = Options {
            offline: true,
            ..opts.clone()
        };
        assert_eq!(kds::fetch(url, Some(cache.path()), &offline).unwrap(), body);
    }
    for line in server.requests() {
        assert!(line.ends_with(" 200"), "{line}");
    }
    // Written atomically: no temporary file is left beside the cached ones.
    let mut stack = vec![cache.path().to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                assert!(!name.starts_with(".kds-"), "temporary file left: {name}");
            }
        }
    }
    assert_eq!(files, urls.len());
}

/// A report for another TCB must not get the cached VCEK: the other URL is
/// asked of KDS (which has no such VCEK: 404, naming the URL), and nothing
/// is cached for it.
#[test]
fn another_tcb_is_not_served_the_cached_vcek() {
    let Some(vectors) = snp_vectors("another_tcb_is_not_served_the_cached_vcek") else {
        return;
    };
    let server = Server::start(&vectors, &[]);
    let cache = tempfile::tempdir().unwrap();
    let opts = server.options();
    for (name, url, _) in vcek_urls(&vectors) {
        kds::fetch(&url, Some(cache.path()), &opts).unwrap();
        let before = server.requests().len();
        // ucodeSPL is last in every KDS URL; one more is another TCB.
        let (head, ucode) = url.rsplit_once("ucodeSPL=").unwrap();
        let other = format!("{head}ucodeSPL={}", ucode.parse::<u32>().unwrap() + 1);
        let err = kds::fetch(&other, Some(cache.path()), &opts).unwrap_err();
        assert!(matches!(err, KdsError::NotFound { .. }), "{name}: {err:?}");
        let msg = err.to_string();
        let mirrored = other.replace(AMD, &server.base);
        assert!(
            msg.contains(&mirrored) && msg.contains("404"),
            "{name}: {msg}"
        );
        assert_eq!(server.requests().len(), before + 1, "{name}: asked KDS");
        let offline = Options {
            offline: true,
            ..opts.clone()
        };
        let err = kds::fetch(&other, Some(cache.path()), &offline).unwrap_err();
        assert!(
            matches!(err, KdsError::NotCached { .. }),
            "{name}: 404 cached? {err:?}"
        );
    }
}

#[test]
fn cert_chains_for_each_product() {
    let Some(vectors) = snp_vectors("cert_chains_for_each_product") else {
        return;
    };
    let server = Server::start(&vectors, &[]);
    let cache = tempfile::tempdir().unwrap();
    let opts = server.options();
    for (path, file) in [
        ("/vcek/v1/Milan/cert_chain", "ask_ark_milan.pem"),
        ("/vcek/v1/Genoa/cert_chain", "ask_ark_genoa.pem"),
        ("/vcek/v1/Turin/cert_chain", "ask_ark_turin_vcek.pem"),
        ("/vlek/v1/Milan/cert_chain", "ask_ark_milan_vlek.pem"),
        ("/vlek/v1/Genoa/cert_chain", "ask_ark_genoa_vlek.pem"),
        ("/vlek/v1/Turin/cert_chain", "ask_ark_turin_vlek.pem"),
    ] {
        let want = std::fs::read(vectors.join("amd-roots").join(file)).unwrap();
        let url = format!("{AMD}{path}");
        assert_eq!(
            kds::fetch(&url, Some(cache.path()), &opts).unwrap(),
            want,
            "{path}"
        );
        assert_eq!(
            kds::fetch(path, Some(cache.path()), &opts).unwrap(),
            want,
            "{path}"
        );
    }
    assert_eq!(server.requests().len(), 6, "each chain fetched once");
}

/// Offline mode with an empty cache: a clear error naming the URL, and not
/// one request reaches the server.
#[test]
fn offline_mode_never_connects() {
    let Some(vectors) = snp_vectors("offline_mode_never_connects") else {
        return;
    };
    let server = Server::start(&vectors, &[]);
    let cache = tempfile::tempdir().unwrap();
    let opts = Options {
        offline: true,
        ..server.options()
    };
    for (name, url, _) in vcek_urls(&vectors) {
        let err = kds::fetch(&url, Some(cache.path()), &opts).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, KdsError::NotCached { .. }), "{name}: {err:?}");
        assert!(
            msg.contains("offline") && msg.contains(&url.replace(AMD, &server.base)),
            "{name}: {msg}"
        );
    }
    // Offline with the real KDS as base: the message names AMD's URL, and
    // nothing is sent (there is no network in tests to send it to anyway).
    let (_, url, _) = &vcek_urls(&vectors)[0];
    let amd = Options {
        offline: true,
        ..Options::default()
    };
    let msg = kds::fetch(url, Some(cache.path()), &amd)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(url.as_str()), "{msg}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

/// KDS under load: two 429 answers, then the certificate; the waits follow
/// Retry-After.
#[test]
fn rate_limited_then_served() {
    let Some(vectors) = snp_vectors("rate_limited_then_served") else {
        return;
    };
    let server = Server::start(&vectors, &["--busy", "2", "--retry-after", "1"]);
    let cache = tempfile::tempdir().unwrap();
    let (_, url, sha) = &vcek_urls(&vectors)[0];
    let t = Instant::now();
    let body = kds::fetch(url, Some(cache.path()), &server.options()).unwrap();
    let took = t.elapsed();
    assert_eq!(&sha256_hex(&body), sha);
    let statuses: Vec<_> = server
        .requests()
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["429", "429", "200"]);
    assert!(
        took >= Duration::from_secs(2),
        "waited {took:?}, Retry-After was 1 s twice"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// KDS that never stops answering 429: the fetch gives up after the number
/// of tries, or at once when Retry-After would pass the waiting bound, and
/// says so with the URL.
#[test]
fn endless_rate_limiting_fails_within_the_bound() {
    let Some(vectors) = snp_vectors("endless_rate_limiting_fails_within_the_bound") else {
        return;
    };
    let (_, url, _) = &vcek_urls(&vectors)[0];

    let server = Server::start(&vectors, &["--busy", "-1", "--retry-after", "1"]);
    let cache = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let err = kds::fetch(url, Some(cache.path()), &server.options()).unwrap_err();
    let took = t.elapsed();
    match &err {
        KdsError::RateLimited { tries, waited, .. } => {
            assert_eq!(*tries, 3);
            assert_eq!(*waited, Duration::from_secs(2));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("429") && msg.contains(&url.replace(AMD, &server.base)),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 3);
    assert!(took < Duration::from_secs(6), "{took:?}");
    drop(server);

    // Retry-After past the bound: no waiting at all.
    let server = Server::start(&vectors, &["--busy", "-1", "--retry-after", "3600"]);
    let t = Instant::now();
    let err = kds::fetch(url, Some(cache.path()), &server.options()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        matches!(err, KdsError::RateLimited { tries: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("3600"), "{err}");
    drop(server);

    // No Retry-After: the default wait, within a smaller bound given by the caller.
    let server = Server::start(&vectors, &["--busy", "-1", "--retry-after", "none"]);
    let opts = Options {
        max_tries: 5,
        max_wait: Duration::from_millis(450),
        default_retry_after: Duration::from_millis(200),
        ..server.options()
    };
    let err = kds::fetch(url, Some(cache.path()), &opts).unwrap_err();
    assert!(
        matches!(err, KdsError::RateLimited { tries: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 3);
    // Nothing was cached by any of this.
    let offline = Options {
        offline: true,
        ..Options::default()
    };
    assert!(kds::fetch(url, Some(cache.path()), &offline).is_err());
}

/// A 200 answer that is an HTML page (a broken mirror, a captive portal)
/// is refused and not cached.
#[test]
fn html_instead_of_a_certificate_is_refused() {
    let Some(vectors) = snp_vectors("html_instead_of_a_certificate_is_refused") else {
        return;
    };
    let server = Server::start(&vectors, &["--html"]);
    let cache = tempfile::tempdir().unwrap();
    let (_, url, _) = &vcek_urls(&vectors)[0];
    for u in [url.as_str(), "/vcek/v1/Milan/cert_chain"] {
        let err = kds::fetch(u, Some(cache.path()), &server.options()).unwrap_err();
        assert!(matches!(err, KdsError::BadBody { .. }), "{err:?}");
        assert!(err.to_string().contains("not a certificate"), "{err}");
    }
    let offline = Options {
        offline: true,
        ..server.options()
    };
    assert!(kds::fetch(url, Some(cache.path()), &offline).is_err());
}

/// A server that accepts the connection and never answers: the read timeout
/// ends the fetch. A closed port: a network error naming the URL.
#[test]
fn silent_and_closed_servers_fail_in_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cache = tempfile::tempdir().unwrap();
    let opts = Options {
        base_url: base.clone(),
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let t = Instant::now();
    let err = kds::fetch("/vcek/v1/Milan/cert_chain", Some(cache.path()), &opts).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(matches!(err, KdsError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&base), "{err}");
    drop(listener);

    let err = kds::fetch("/vcek/v1/Milan/cert_chain", Some(cache.path()), &opts).unwrap_err();
    assert!(matches!(err, KdsError::Network { .. }), "{err:?}");
    assert!(err.to_string().contains(&base), "{err}");
}

/// URLs that are not KDS paths are refused before any I/O, and every error
/// maps to exit code 2 (an input could not be had).
#[test]
fn bad_urls_and_exit_codes() {
    let cache = tempfile::tempdir().unwrap();
    let opts = Options {
        base_url: "http://127.0.0.1:9".into(),
        ..Options::default()
    };
    for url in [
        "http://attacker.example/vcek/v1/Milan/cert_chain",
        "/vcek/v1/../../../etc/passwd",
        "",
    ] {
        let err = kds::fetch(url, Some(cache.path()), &opts).unwrap_err();
        assert!(matches!(err, KdsError::BadUrl { .. }), "{url}: {err:?}");
        let e: sev_validate::Error = err.into();
        assert_eq!(e.exit_code(), sev_validate::ExitCode::UnsupportedUsage);
    }
}

/// Chains minted by the simulated Secure Processor are served too (each wins
/// over the vectors' roots for its product), with the KDS URL written here
/// from the spec (§2.3): Turin takes the 8-byte chip ID and fmcSPL first.
#[test]
fn simulated_chains_are_served_by_their_kds_url() {
    let Some(vectors) = snp_vectors("simulated_chains_are_served_by_their_kds_url") else {
        return;
    };
    if snp_sim::command().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut chains = Vec::new();
    let mut args = Vec::new();
    for product in snp_sim::PRODUCTS {
        let dir = tmp.path().join(product);
        let info = snp_sim::chain(
            product,
            &dir,
            &["--tcb", "bl=9,tee=1,snp=21,ucode=210,fmc=3"],
        )
        .unwrap();
        args.push("--chain".to_string());
        args.push(dir.to_str().unwrap().to_string());
        chains.push((product, dir, info));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&vectors, &args);
    let cache = tmp.path().join("cache");
    for (product, dir, info) in &chains {
        let chip = info["chip_id"].as_str().unwrap();
        let url = match *product {
            "turin" => format!(
                "{AMD}/vcek/v1/Turin/{chip}?fmcSPL=03&blSPL=09&teeSPL=01&snpSPL=21&ucodeSPL=210"
            ),
            "milan" => {
                format!("{AMD}/vcek/v1/Milan/{chip}?blSPL=09&teeSPL=01&snpSPL=21&ucodeSPL=210")
            }
            _ => format!("{AMD}/vcek/v1/Genoa/{chip}?blSPL=09&teeSPL=01&snpSPL=21&ucodeSPL=210"),
        };
        assert_eq!(chip.len(), if *product == "turin" { 16 } else { 128 });
        let got = kds::fetch(&url, Some(&cache), &server.options()).unwrap();
        assert_eq!(
            got,
            std::fs::read(dir.join("vcek.der")).unwrap(),
            "{product}"
        );
        let name = &url[AMD.len() + 9..AMD.len() + 14];
        let chain = kds::fetch(
            &format!("/vcek/v1/{name}/cert_chain"),
            Some(&cache),
            &server.options(),
        )
        .unwrap();
        assert_eq!(chain, std::fs::read(dir.join("cert_chain.pem")).unwrap());
    }
}
