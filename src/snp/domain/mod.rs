//! SEV-SNP domains: the `<launchSecurity type='sev-snp'>` of a libvirt domain
//! decoded ([`decode`]), checked for the mistakes that make a launch fail or
//! leave it unattestable ([`check`]), its ID block judged before launch
//! ([`prelaunch`]: would SNP_LAUNCH_FINISH accept it for the launch the
//! owner expects?), and a guest's report held to what the domain gave the
//! firmware ([`report_checks`]). Without the pre-launch verdict the owner
//! learns of a wrong ID block only when the guest fails to start ("Bad
//! measurement", fw_error 11), with no word on which input was wrong.
//!
//! Pure: no I/O, no printing. The XML comes from the host, so the checks catch
//! misconfiguration; they never make a host value trusted.

mod checks;
mod decode;
mod prelaunch;
mod report_checks;

pub use checks::{check, unmeasured_kernel_warning, SnpContext};
pub use decode::{decode, SnpDomain};
pub use prelaunch::{prelaunch, IdKeys};
pub use report_checks::report_checks;
