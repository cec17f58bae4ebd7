//! A temporary folder for a test's files, named as the test names them.

use std::path::Path;

pub struct Files(tempfile::TempDir);

impl Default for Files {
    fn default() -> Self {
        Files::new()
    }
}

impl Files {
    pub fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The path of `name` in the folder.
    pub fn p(&self, name: &str) -> String {
        self.path()
            .join(name)
            .into_os_string()
            .into_string()
            .unwrap()
    }

    /// Writes `data` to `name`; returns its path.
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> String {
        let p = self.p(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}
