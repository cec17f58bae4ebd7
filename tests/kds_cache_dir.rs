//! The KDS cache directory's default (src/source/kds.rs): XDG_CACHE_HOME,
//! else ~/.cache, relative values ignored, and a clear error with neither.
//! A test binary of its own with one test, because it changes the process
//! environment.
#![cfg(feature = "kds")]

use sev_validate::source::kds::{self, KdsError, Options};

#[test]
fn default_cache_dir_follows_xdg_then_home() {
    let tmp = tempfile::tempdir().unwrap();
    let xdg = tmp.path().join("xdg");
    let home = tmp.path().join("home");
    let offline = Options {
        offline: true,
        ..Options::default()
    };
    let url = "/vcek/v1/Milan/cert_chain";

    std::env::set_var("XDG_CACHE_HOME", &xdg);
    std::env::set_var("HOME", &home);
    assert_eq!(
        kds::default_cache_dir().unwrap(),
        xdg.join("virt-qemu-sev-validate/kds")
    );
    // fetch(.., None, ..) uses it: offline, the error names the file it looked for.
    match kds::fetch(url, None, &offline).unwrap_err() {
        KdsError::NotCached { path, url: u } => {
            assert_eq!(
                path,
                xdg.join("virt-qemu-sev-validate/kds/vcek/v1/Milan/cert_chain")
            );
            assert_eq!(u, format!("https://kdsintf.amd.com{url}"));
        }
        other => panic!("{other:?}"),
    }
    // A cached file there is found.
    let file = xdg.join("virt-qemu-sev-validate/kds/vcek/v1/Milan/cert_chain");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"-----BEGIN CERTIFICATE-----\n").unwrap();
    assert_eq!(
        kds::fetch(url, None, &offline).unwrap(),
        b"-----BEGIN CERTIFICATE-----\n"
    );

    // Relative XDG_CACHE_HOME is ignored (XDG base directory specification).
    std::env::set_var("XDG_CACHE_HOME", "relative/cache");
    assert_eq!(
        kds::default_cache_dir().unwrap(),
        home.join(".cache/virt-qemu-sev-validate/kds")
    );
    std::env::remove_var("XDG_CACHE_HOME");
    assert_eq!(
        kds::default_cache_dir().unwrap(),
        home.join(".cache/virt-qemu-sev-validate/kds")
    );

    std::env::remove_var("HOME");
    let err = kds::fetch(url, None, &offline).unwrap_err();
    assert!(matches!(err, KdsError::NoCacheDir), "{err:?}");
    assert!(err.to_string().contains("XDG_CACHE_HOME"), "{err}");
}
