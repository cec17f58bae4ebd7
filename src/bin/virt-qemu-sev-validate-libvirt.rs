//! The same command line as virt-qemu-sev-validate, with the libvirt source
//! (`--domain`) linked in. virt-qemu-sev-validate runs this executable for
//! `--domain`; it can also be run directly.

fn main() {
    std::process::exit(sev_validate::cli::main_entry(Some(
        sev_validate::source::enable_libvirt,
    )));
}
