//! sevctl's LAUNCH_MEASURE vectors (measurement.md §8.3) in the public vectors folder
//! ([`super::vectors_dir`]): two launches whose measurements sevctl published, described once
//! for every suite that checks them.

use std::path::{Path, PathBuf};

use super::Args;

/// The SEV launch with a kernel: its published measurement (base64 of MEASURE ‖ MNONCE).
pub const SEV_KERNEL_MEASUREMENT: &str =
    "h3auYbWQnVW7EGLWN4Hf9SN0oEYMPU2sK4bLnefWPwvDE/q1EcIWsVBbGy6pkDxA";
/// The SEV-ES launch of 4 vCPUs: its published measurement.
pub const SEV_ES_MEASUREMENT: &str =
    "/o0nzDKE5XgtVnUZWPhUea/WZYrTKLExR7KCwuMdbActvpWfXTFk21KMZIAAhQny";
/// The SEV launch's kernel command line.
pub const CMDLINE: &str = "foo bar baz fake kernel=cmdline";

/// The `sevctl` folder of the public vectors.
pub struct Sevctl(PathBuf);

impl Sevctl {
    /// `vectors` is the public vectors folder.
    pub fn new(vectors: &Path) -> Sevctl {
        Sevctl(vectors.join("sevctl"))
    }

    /// The path of one of its files.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).into_os_string().into_string().unwrap()
    }

    pub fn firmware(&self) -> String {
        self.file("OVMF.amdsev.fd_trimmed_edk2-ovmf-20220126gitbb1bba3d77-4.el9")
    }

    /// `--tik` and `--tek` (the TEK is any 16 bytes: it does not enter the measurement).
    pub fn keys(&self) -> Args {
        Args::new().keys(
            self.file("measurement_tik1.bin"),
            self.file("secret_tek1.bin"),
        )
    }

    /// The SEV launch (API 1.40, build 40, policy 3) before its files: the platform only.
    pub fn sev(&self) -> Args {
        Args::new().platform(1, 40, 40, 3)
    }

    /// The SEV launch with its kernel, initrd and command line, and the keys.
    pub fn sev_kernel(&self) -> Args {
        self.sev()
            .opt("--firmware", self.firmware())
            .opt("--kernel", self.file("measurement_vmlinuz-fake"))
            .opt("--initrd", self.file("measurement_initrd-fake"))
            .opt("--cmdline", CMDLINE)
            .args(self.keys())
    }

    /// The SEV-ES launch (API 1.49, build 6, policy 5): firmware and keys; the vCPUs are the
    /// caller's.
    pub fn sev_es(&self) -> Args {
        Args::new()
            .platform(1, 49, 6, 5)
            .opt("--firmware", self.firmware())
            .args(self.keys())
    }
}
