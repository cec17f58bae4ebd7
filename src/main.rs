//! Thin binary: parse, run, map the outcome to the Python tool's exit codes.
//! It carries no libvirt code: `--domain` runs are handed to the
//! `virt-qemu-sev-validate-libvirt` executable installed beside it.

fn main() {
    std::process::exit(sev_validate::cli::main_entry(None));
}
