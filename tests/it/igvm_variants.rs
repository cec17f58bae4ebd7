//! The one-change variants of the public IGVM vector seed1.igvm
//! (../shared/igvm-vectors), built with the igvm crate as seed1.json
//! describes them, for the IGVM explainer's tests (`igvm_explainer`): the
//! variant files are not shipped. seed1.igvm is parsed, one directive or
//! header changed, the ID block's LD set to the variant's digest as the
//! generator did, and the file serialized; each is checked to be the variant
//! described: the directive as seed1.json lists it, and its digest from the
//! crate's own measurement equal to digests.tsv's `qemu_model`.

use std::collections::HashMap;
use std::path::PathBuf;

use igvm::snp_defs::SevFeatures;
use igvm::{
    IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader, IgvmRevision,
};
use igvm_defs::{IgvmPageDataType, IgvmPlatformType};
use serde_json::Value;
use sha2::{Digest, Sha384};

use crate::common;
use crate::igvm_build::{qemu_digest, qemu_digest_of};

/// The variants seed1.json describes, by the file name's middle part.
pub const VARIANTS: [&str; 8] = [
    "page-content",
    "page-gpa",
    "policy",
    "sev-features",
    "type-normal-to-unmeasured",
    "type-zero-to-unmeasured",
    "type-secrets-to-cpuid",
    "vmsa-rip",
];

pub struct Vectors {
    pub dir: PathBuf,
    /// digests.tsv's `qemu_model` column by file name, lower-case hex: the
    /// digest of the pages in file order, which is what the crate computes
    /// and identifies each variant built here.
    pub qemu_model: HashMap<String, String>,
    /// The launch digest QEMU gives seed1 and each variant: the crate's
    /// measurement of the directives in the order QEMU's loader hands them
    /// over (`igvm_build::qemu_order`: each parameter insert before the
    /// page region pending when it comes), lower-case hex.
    pub qemu: HashMap<String, String>,
    /// seed1.json's entries by file name.
    pub json: HashMap<String, Value>,
    pub seed: IgvmFile,
}

/// The vectors, or `None` (after a SKIPPED line naming `test`; a failure
/// in CI) when ../shared/igvm-vectors is missing.
pub fn vectors(test: &str) -> Option<Vectors> {
    let dir = common::igvm_vectors_dir(test)?;
    let tsv = std::fs::read_to_string(dir.join("digests.tsv")).unwrap();
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = head.iter().position(|h| *h == "qemu_model").unwrap();
    let qemu_model = lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .map(|c| (c[0].to_string(), c[col].to_ascii_lowercase()))
        .collect();
    let all: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("seed1.json")).unwrap()).unwrap();
    let json = all
        .into_iter()
        .map(|e| {
            let name = e["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            (name, e)
        })
        .collect();
    let bytes = std::fs::read(dir.join("seed1.igvm")).unwrap();
    // A version 1 file: rebuilt with IgvmRevision::V1.
    assert_eq!(bytes[4..8], 1u32.to_le_bytes());
    let seed = IgvmFile::new_from_binary(&bytes, None).unwrap();
    let mut v = Vectors {
        dir,
        qemu_model,
        qemu: HashMap::new(),
        json,
        seed,
    };
    let mut qemu = HashMap::new();
    qemu.insert("seed1.igvm".to_string(), hex(&qemu_digest(&v.seed)));
    for name in VARIANTS {
        let (bytes, _) = variant(&v, name);
        qemu.insert(format!("seed1.{name}.igvm"), qemu_digest_of(&bytes));
    }
    v.qemu = qemu;
    Some(v)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> [u8; 48] {
    let v: Vec<u8> = (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

pub fn snp_mask(f: &IgvmFile) -> u32 {
    f.platforms()
        .iter()
        .map(|IgvmPlatformHeader::SupportedPlatform(p)| p)
        .find(|p| p.platform_type == IgvmPlatformType::SEV_SNP)
        .unwrap()
        .compatibility_mask
}

/// The igvm crate's own SNP measurement of `f`.
pub fn crate_digest(f: &IgvmFile) -> String {
    let d = igvm::measurement::generate_snp_measurement(
        f.initializations(),
        f.directives(),
        snp_mask(f),
    )
    .unwrap();
    hex(&d)
}

fn page_sha384(data: &[u8]) -> String {
    let mut page = data.to_vec();
    page.resize(4096, 0);
    hex(&Sha384::digest(&page))
}

/// seed1.json's entry for the variant, checked to describe `what`.
fn described<'a>(v: &'a Vectors, name: &str, what: &[&str]) -> &'a Value {
    let e = &v.json[&format!("seed1.{name}.igvm")];
    let change = e["change"].as_str().unwrap();
    for w in what {
        assert!(
            change.contains(w),
            "seed1.json describes {name} as {change:?}, not {w:?}"
        );
    }
    e
}

/// Changes one directive or header of seed1 as seed1.json describes the
/// variant, and checks the result against its directive list.
fn change(
    v: &Vectors,
    name: &str,
    inits: &mut [IgvmInitializationHeader],
    d: &mut [IgvmDirectiveHeader],
) {
    let e = |what: &[&str]| described(v, name, what);
    match name {
        "page-content" => {
            let j = e(&["directive 7", "byte 0x33 xor 0x01"]);
            if let IgvmDirectiveHeader::PageData { data, .. } = &mut d[7] {
                data[0x33] ^= 1;
                assert_eq!(page_sha384(data), j["directives"][7]["sha384"]);
            }
        }
        "page-gpa" => {
            let j = e(&["directive 7", "gpa 0x44c1000 -> 0x244c1000"]);
            if let IgvmDirectiveHeader::PageData { gpa, .. } = &mut d[7] {
                assert_eq!(*gpa, 0x44c1000);
                *gpa = 0x244c1000;
            }
            assert_eq!(j["directives"][7]["gpa"], "0x244c1000");
        }
        "policy" => {
            let j = e(&["policy 0x30000 -> 0xb0000"]);
            for h in inits.iter_mut() {
                if let IgvmInitializationHeader::GuestPolicy { policy, .. } = h {
                    assert_eq!(*policy, 0x30000);
                    *policy = 0xb0000;
                }
            }
            assert_eq!(j["policy"], "0xb0000");
        }
        "sev-features" | "vmsa-rip" => {
            let j = e(&[if name == "vmsa-rip" {
                "rip 0x44c0444 -> 0x44c0454"
            } else {
                "0x8001 -> 0x8021"
            }]);
            if let IgvmDirectiveHeader::SnpVpContext { vmsa, .. } = &mut d[47] {
                if name == "vmsa-rip" {
                    assert_eq!(vmsa.rip, 0x44c0444);
                    vmsa.rip = 0x44c0454;
                } else {
                    assert_eq!(vmsa.sev_features.into_bits(), 0x8001);
                    vmsa.sev_features = SevFeatures::from_bits(0x8021);
                }
            }
            let want = if name == "vmsa-rip" {
                ("rip", "0x44c0454")
            } else {
                ("sev_features", "0x8021")
            };
            assert_eq!(j["directives"][47][want.0], want.1);
        }
        "type-normal-to-unmeasured" | "type-zero-to-unmeasured" => {
            let i = if name == "type-zero-to-unmeasured" {
                40
            } else {
                6
            };
            let j = e(&[&format!("directive {i}"), "unmeasured"]);
            if let IgvmDirectiveHeader::PageData { flags, data, .. } = &mut d[i] {
                assert!(!flags.unmeasured());
                flags.set_unmeasured(true);
                // "data dropped": the generator's unmeasured page has none.
                data.clear();
            }
            assert_eq!(j["directives"][i]["kind"], "unmeasured");
        }
        "type-secrets-to-cpuid" => {
            let j = e(&["directive 35", "SECRETS -> CPUID_DATA"]);
            if let IgvmDirectiveHeader::PageData { data_type, .. } = &mut d[35] {
                assert_eq!(*data_type, IgvmPageDataType::SECRETS);
                *data_type = IgvmPageDataType::CPUID_DATA;
            }
            assert_eq!(j["directives"][35]["kind"], "cpuid");
        }
        _ => unreachable!(),
    }
}

/// The variant's file, and its file-order digest (checked against
/// digests.tsv, which identifies the variant as the one described).
pub fn variant(v: &Vectors, name: &str) -> (Vec<u8>, String) {
    let mut inits = v.seed.initializations().to_vec();
    let mut d = v.seed.directives().to_vec();
    change(v, name, &mut inits, &mut d);
    let changed = IgvmFile::new(IgvmRevision::V1, v.seed.platforms().to_vec(), inits, d).unwrap();
    let digest = crate_digest(&changed);
    let file = format!("seed1.{name}.igvm");
    assert_eq!(
        digest, v.qemu_model[&file],
        "{file}: the crate's digest is not digests.tsv's"
    );
    assert_eq!(digest, v.json[&file]["qemu_model_digest"], "{file}");
    // The ID block vouches for the variant's launch, as the generator made it.
    let inits = changed.initializations().to_vec();
    let mut d = changed.directives().to_vec();
    match &mut d[0] {
        IgvmDirectiveHeader::SnpIdBlock { ld, .. } => *ld = unhex(&digest),
        _ => panic!("directive 0 of seed1 is its ID block"),
    }
    assert_eq!(v.json[&file]["directives"][0]["ld"], digest.as_str());
    let f = IgvmFile::new(IgvmRevision::V1, v.seed.platforms().to_vec(), inits, d).unwrap();
    assert_eq!(crate_digest(&f), digest, "the ID block is not measured");
    let mut bytes = Vec::new();
    f.serialize(&mut bytes).unwrap();
    (bytes, digest)
}
