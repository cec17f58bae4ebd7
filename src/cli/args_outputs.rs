//! The main command's usage check of its output files: each a file of its
//! own, none an input, standard input read once.

use std::path::PathBuf;

use super::args::Args;
use crate::error::{Error, Result};
use crate::input;
use crate::sev::secrets::SecretSpec;

/// Every file the tool writes must be a file of its own: one path given for
/// two outputs would leave one output overwritten by the other, and an
/// output that is an input would destroy the owner's copy. Standard input
/// (`-`) can be read for one input only.
pub(super) fn check_outputs(a: &Args) -> Result<()> {
    let outputs: Vec<(&str, &PathBuf)> = [
        ("--secret-header", a.secret_header.as_ref()),
        ("--secret-payload", a.secret_payload.as_ref()),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.map(|p| (n, p)))
    .collect();
    let mut inputs: Vec<(&str, &std::path::Path)> = [
        ("--firmware", a.firmware.as_ref()),
        ("--kernel", a.kernel.as_ref()),
        ("--initrd", a.initrd.as_ref()),
        ("--tk", a.tk.as_ref()),
        ("--tik", a.tik.as_ref()),
        ("--tek", a.tek.as_ref()),
        ("--vmsa-cpu0", a.vmsa_cpu0.as_ref()),
        ("--vmsa-cpu1", a.vmsa_cpu1.as_ref()),
    ]
    .into_iter()
    .filter_map(|(n, p)| p.map(|p| (n, p.as_path())))
    .collect();
    // A secret that does not parse is reported by its own check.
    let secret_paths: Vec<PathBuf> = a
        .inject_secret
        .iter()
        .filter_map(|s| SecretSpec::parse(s).ok())
        .map(|s| s.path)
        .collect();
    inputs.extend(
        secret_paths
            .iter()
            .map(|p| ("--inject-secret", p.as_path())),
    );
    let report = a.report.iter().map(|p| ("--report", p.as_path()));
    let snp: Vec<_> = report
        .chain(a.endorsement.inputs())
        .chain(a.snp_requirements.inputs())
        .collect();
    input::at_most_one_stdin(inputs.iter().chain(&snp).copied())?;
    for (i, (name, path)) in outputs.iter().enumerate() {
        for (other, other_path) in &outputs[i + 1..] {
            if input::same_file(path, other_path) {
                return Err(Error::Usage(format!(
                    "{name} and {other} name the same file '{}': each output needs a file of its \
                     own, or one would overwrite the other; give two different paths",
                    path.display()
                )));
            }
        }
        for (input, input_path) in &inputs {
            if input::same_file(path, input_path) {
                return Err(Error::Usage(format!(
                    "{name} '{}' is the file given as {input}: writing it would destroy that input; \
                     give another path",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}
