//! Secrets: the stage after a match. The owner's secret files go into the
//! OVMF secret table, encrypted under the TEK with a header MAC under the
//! TIK (`LAUNCH_SECRET`), bound to the measurement that was validated.
//!
//! The files are checked before any work ([`check_files`]) so that a typo is
//! found early, and read only after the match ([`package`]).

use std::path::PathBuf;

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::core::guid;
use crate::core::secret::{self, SecretPacket, SecretTable};
use crate::error::{Error, Result};
use crate::input;
use crate::sev::launch::Firmware;
use crate::sev::resolve::Keys;

/// A parsed `--inject-secret ALIAS-OR-GUID:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The secret table entry's GUID, by which the guest finds the secret: the
    /// alias's, or the one given.
    pub guid: Uuid,
    /// The file whose bytes are the secret.
    pub path: PathBuf,
}

/// Known secret aliases.
pub const SECRET_ALIASES: &[(&str, Uuid)] = &[("luks-key", guid::LUKS_KEY)];

impl SecretSpec {
    /// Splits at the first ':' only, so paths may contain ':'.
    pub fn parse(spec: &str) -> Result<SecretSpec> {
        let usage = |m: String| Err(Error::Usage(m));
        let Some((name, path)) = spec.split_once(':') else {
            return usage(format!(
                "--inject-secret '{spec}' is not ALIAS-OR-GUID:PATH (for example luks-key:/path/to/key)"
            ));
        };
        if path.is_empty() {
            return usage(format!("--inject-secret '{spec}' names no file after ':'"));
        }
        let guid = match SECRET_ALIASES.iter().find(|(a, _)| *a == name) {
            Some((_, g)) => *g,
            None if is_guid_string(name) => Uuid::parse_str(name)
                .map_err(|e| Error::Usage(format!("secret GUID '{name}' is not valid: {e}")))?,
            None => {
                let known: Vec<&str> = SECRET_ALIASES.iter().map(|(a, _)| *a).collect();
                return usage(format!(
                    "secret alias '{name}' is not known; use a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) or one of: {}",
                    known.join(", ")
                ));
            }
        };
        Ok(SecretSpec {
            guid,
            path: PathBuf::from(path),
        })
    }
}

fn is_guid_string(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks that every secret file exists, before any other work. A pipe or
/// FIFO is not opened here: opening and closing it would lose its data.
pub fn check_files(specs: &[SecretSpec]) -> Result<()> {
    for s in specs {
        input::check_input("secret file", &s.path)?;
    }
    Ok(())
}

/// The warning for a firmware without a secret area, when no address is
/// given. `offline`: the packet goes to files, and the host injects it.
pub fn area_warning(
    firmware: &Firmware,
    secret_address: Option<u64>,
    offline: bool,
) -> Option<String> {
    // QEMU takes the address from this entry; without it the packet
    // lands at guest address 0, where OVMF never looks for secrets.
    let what = "the firmware has no SEV secret area (OVMF footer entry \
                4c2eb361-7d9b-4cc3-8081-127c90d3d294 is missing or zero), so";
    let fix = "use a firmware with a secret area (edk2 AmdSevX64)";
    (firmware.secret_area().is_none() && secret_address.is_none()).then(|| {
        if offline {
            // --secret-address is refused offline: the host chooses the address.
            format!(
                "{what} a host that injects this packet without an address puts it at guest \
                 address 0, where the firmware does not look for it; {fix}, or the host must \
                 pass the guest address where the secret is expected when it injects the packet \
                 (virsh domsetlaunchsecstate --set-address, or the gpa of QMP \
                 sev-inject-launch-secret)"
            )
        } else {
            format!(
                "{what} QEMU will put the secret at guest address 0 where the firmware does not \
                 look for it; {fix} or give --secret-address"
            )
        }
    })
}

/// The secrets packaged for `LAUNCH_SECRET`.
pub struct Packaged {
    /// The LAUNCH_SECRET packet: the 52-byte header (FLAGS, IV, MAC under the
    /// TIK) and the secret table encrypted under the TEK.
    pub packet: SecretPacket,
    /// Number of secrets in the table.
    pub count: usize,
    /// The padded table length.
    pub table_bytes: usize,
    /// Each secret's GUID and length.
    pub secrets: Vec<(Uuid, usize)>,
}

/// Reads the secret files into one table and packages it for the launch
/// whose MEASURE is `measure`.
pub fn package(
    specs: &[SecretSpec],
    firmware: &Firmware,
    keys: &Keys,
    measure: &[u8; 32],
) -> Result<Packaged> {
    let (limit, limit_is) = match firmware.secret_area() {
        Some(a) => (a.size as usize, "the firmware's secret area holds"),
        None => (
            secret::MAX_SECRET_TABLE_LEN,
            "the tool accepts when the firmware names no secret area",
        ),
    };
    let mut table = SecretTable::new();
    let mut secrets = Vec::new();
    for s in specs {
        let data = read_secret(s, limit, limit_is)?;
        secrets.push((s.guid, data.len()));
        table.add(s.guid, data)?;
    }
    if table.padded_len() > limit {
        return Err(Error::Usage(format!(
            "the secret table is {} bytes, larger than the {limit} bytes {limit_is}; inject fewer or smaller secrets",
            table.padded_len()
        )));
    }
    let plaintext = table.build()?;
    let iv = secret::random_iv()?;
    let packet = secret::package(&keys.tik, &keys.tek, measure, &plaintext, iv)?;
    Ok(Packaged {
        packet,
        count: table.len(),
        table_bytes: plaintext.len(),
        secrets,
    })
}

/// One secret file, refused before reading when it cannot fit: never cut short.
pub(crate) fn read_secret(
    s: &SecretSpec,
    limit: usize,
    limit_is: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    // The size is only a hint (pipes say 0): the limit is enforced while reading.
    input::read_within("secret file", &s.path, limit, |size| {
        let size = match size {
            input::Size::Exactly(n) => format!("{n} bytes, more than"),
            input::Size::MoreThan(_) => "more than".into(),
        };
        Error::Usage(format!(
            "secret file '{}' is {size} the {limit} bytes {limit_is}",
            s.path.display()
        ))
    })
}
