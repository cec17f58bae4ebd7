//! The values an SEV-SNP domain declares that the owner can pin: HOST_DATA
//! (`<hostData>`) and the ID block's FAMILY_ID, IMAGE_ID and GUEST_SVN.
//!
//! The host writes them into the domain, and the firmware copies them into
//! every attestation report. Matching the domain proves only that the guest
//! runs as the host declared it; the owner's `--host-data`, `--family-id`,
//! `--image-id` and `--min-guest-svn` make them the owner's values. They are
//! held against the domain before launch ([`check`]) and against the report
//! (the `expect.*` checks); without them the report's `domain.*` lines say
//! whose value they compared ([`annotate`]).

use crate::core::hex;
use crate::core::id_block::IdBlock;
use crate::error::{Error, Result};
use crate::snp::validate::Check;

/// The owner's values for what the domain declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// `--host-data`.
    pub host_data: Option<[u8; 32]>,
    /// `--family-id`.
    pub family_id: Option<[u8; 16]>,
    /// `--image-id`.
    pub image_id: Option<[u8; 16]>,
    /// `--min-guest-svn`.
    pub min_guest_svn: Option<u32>,
}

/// The domain's declarations (its `<hostData>` and `<idBlock>`) against the
/// owner's pins: a difference is a configuration error (exit 4), found
/// before the guest starts.
pub fn check(host_data: Option<[u8; 32]>, block: Option<&IdBlock>, pins: &Pins) -> Result<()> {
    if let Some(want) = pins.host_data {
        let got = host_data.unwrap_or([0; 32]);
        let where_ = match host_data {
            Some(_) => format!("<hostData> is {}", hex(&got)),
            None => "the domain has no <hostData>, so HOST_DATA will be zero".into(),
        };
        differ(
            got != want,
            &where_,
            "--host-data",
            &hex(&want),
            "<hostData>",
        )?;
    }
    let no_block = |field: &str| format!("the domain has no <idBlock>, so {field} will be zero");
    if let Some(want) = pins.family_id {
        let got = block.map_or([0; 16], |b| b.family_id);
        let where_ = match block {
            Some(_) => format!("<idBlock>'s FAMILY_ID is {}", hex(&got)),
            None => no_block("FAMILY_ID"),
        };
        differ(
            got != want,
            &where_,
            "--family-id",
            &hex(&want),
            "<idBlock>",
        )?;
    }
    if let Some(want) = pins.image_id {
        let got = block.map_or([0; 16], |b| b.image_id);
        let where_ = match block {
            Some(_) => format!("<idBlock>'s IMAGE_ID is {}", hex(&got)),
            None => no_block("IMAGE_ID"),
        };
        differ(got != want, &where_, "--image-id", &hex(&want), "<idBlock>")?;
    }
    if let Some(min) = pins.min_guest_svn {
        let got = block.map_or(0, |b| b.guest_svn);
        if got < min {
            let where_ = match block {
                Some(_) => format!("<idBlock>'s GUEST_SVN is {got}"),
                None => no_block("GUEST_SVN"),
            };
            return Err(Error::Config(format!(
                "{where_}, below --min-guest-svn {min}: the host would launch an older guest image \
                 than you accept; give the domain an ID block for a current image, or lower \
                 --min-guest-svn"
            )));
        }
    }
    Ok(())
}

fn differ(differs: bool, where_: &str, option: &str, want: &str, element: &str) -> Result<()> {
    if !differs {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{where_}, but {option} is {want}: the guest would be launched with a value you did not \
         give; fix the domain's {element} or {option}"
    )))
}

/// Says whose value each `domain.*` check of a declared field compared: the
/// owner's pin, or only the host's declaration.
pub fn annotate(checks: &mut [Check], pins: &Pins) {
    for c in checks.iter_mut() {
        let (pinned, option) = match c.name {
            "domain.host_data" => (pins.host_data.is_some(), "--host-data"),
            "domain.family_id" => (pins.family_id.is_some(), "--family-id"),
            "domain.image_id" => (pins.image_id.is_some(), "--image-id"),
            "domain.guest_svn" => (pins.min_guest_svn.is_some(), "--min-guest-svn"),
            _ => continue,
        };
        if pinned {
            c.message
                .push_str(&format!("; your {option} is checked by its expect.* line"));
        } else {
            c.message.push_str(&format!(
                "; the domain's value is the host's declaration, not yours: pin it with {option}"
            ));
        }
    }
}
