//! The igvm crate's side of the IGVM benchmark (`scripts/bench-igvm.sh`) and
//! the maker of the `igvm_file` fuzz seeds: builds SEV-SNP IGVM files with the
//! igvm crate's builder, and prints the crate's own launch digest of a file
//! (`igvm::measurement::generate_snp_measurement`, igvm 0.5, feature `corim`,
//! a dev-dependency of this package).
//!
//! ```text
//! igvm_crate_digest build --seed N --out FILE [--data-pages P] [--zero-pages Z]
//!                         [--short] [--vmsas V] [--native] [--no-policy]
//! igvm_crate_digest digest FILE
//! igvm_crate_digest floor FILE RUNS
//! ```
//!
//! `build`: a guest policy, a 1-page parameter area with its insert, P pages
//! of random data (`--short`: each page's data a random length below 4 KiB),
//! Z zero pages, a SECRETS and a CPUID page, then V VMSAs at 0xFFFFFFFFF000;
//! `--native` adds a native platform with a page and a VP context of its own.
//! `digest`: the crate's digest of the file, in hex, as `snp-digest --igvm`
//! prints it. `floor`: the median time, in milliseconds, of hashing every
//! SEV-SNP data page of the file once with SHA-384 (the page data already in
//! memory), over RUNS runs: no launch digest of the file can take less.

use std::process::ExitCode;
use std::time::Instant;

use igvm::snp_defs::{SevFeatures, SevVmsa};
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader};
use igvm_defs::{
    IgvmNativeVpContextX64, IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType,
    IGVM_VHS_PARAMETER, IGVM_VHS_PARAMETER_INSERT, IGVM_VHS_SUPPORTED_PLATFORM,
};
use sha2::{Digest, Sha384};
use zerocopy::FromZeros;

const SNP: u32 = 1;
const NATIVE: u32 = 2;
const PAGE: u64 = 4096;

/// What `build` makes.
struct Build {
    seed: u64,
    out: String,
    data_pages: u64,
    zero_pages: u64,
    short: bool,
    vmsas: u16,
    native: bool,
    policy: bool,
}

/// SplitMix64: the file's random data, replayable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn page(gpa: u64, mask: u32, data_type: IgvmPageDataType, data: Vec<u8>) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask: mask,
        flags: IgvmPageDataFlags::new(),
        data_type,
        data,
    }
}

fn platform(mask: u32, platform_type: IgvmPlatformType) -> IgvmPlatformHeader {
    IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: mask,
        highest_vtl: 0,
        platform_type,
        platform_version: 1,
        shared_gpa_boundary: 0,
    })
}

fn directives(b: &Build, rng: &mut Rng) -> Vec<IgvmDirectiveHeader> {
    let mut d = vec![
        IgvmDirectiveHeader::ParameterArea {
            number_of_bytes: PAGE,
            parameter_area_index: 0,
            initial_data: Vec::new(),
        },
        IgvmDirectiveHeader::VpCount(IGVM_VHS_PARAMETER {
            parameter_area_index: 0,
            byte_offset: 0,
        }),
        IgvmDirectiveHeader::ParameterInsert(IGVM_VHS_PARAMETER_INSERT {
            gpa: 0x8000,
            compatibility_mask: SNP,
            parameter_area_index: 0,
        }),
    ];
    let mut gpa = 0x10_0000;
    for _ in 0..b.data_pages {
        let len = if b.short {
            (rng.next() % PAGE) as usize
        } else {
            PAGE as usize
        };
        d.push(page(gpa, SNP, IgvmPageDataType::NORMAL, rng.bytes(len)));
        gpa += PAGE;
    }
    for _ in 0..b.zero_pages {
        d.push(page(gpa, SNP, IgvmPageDataType::NORMAL, Vec::new()));
        gpa += PAGE;
    }
    d.push(page(gpa, SNP, IgvmPageDataType::SECRETS, Vec::new()));
    d.push(page(
        gpa + PAGE,
        SNP,
        IgvmPageDataType::CPUID_DATA,
        Vec::new(),
    ));
    if b.native {
        d.push(page(0x2000, NATIVE, IgvmPageDataType::NORMAL, Vec::new()));
        let mut c = IgvmNativeVpContextX64::new_box_zeroed().expect("allocation");
        c.rip = 0x2000;
        d.push(IgvmDirectiveHeader::X64NativeVpContext {
            compatibility_mask: NATIVE,
            vp_index: 0,
            context: c,
        });
    }
    for vp_index in 0..b.vmsas {
        let mut v = SevVmsa::new_box_zeroed().expect("allocation");
        v.rip = 0x10_0000 + rng.next() % 0x1000;
        v.cr0 = 0x31;
        v.sev_features = SevFeatures::from_bits(1);
        d.push(IgvmDirectiveHeader::SnpVpContext {
            gpa: 0xFFFF_FFFF_F000,
            compatibility_mask: SNP,
            vp_index,
            vmsa: v,
        });
    }
    d
}

fn build(b: &Build) -> Result<(), String> {
    let mut rng = Rng(b.seed);
    let mut platforms = vec![platform(SNP, IgvmPlatformType::SEV_SNP)];
    if b.native {
        platforms.push(platform(NATIVE, IgvmPlatformType::NATIVE));
    }
    let inits = if b.policy {
        vec![IgvmInitializationHeader::GuestPolicy {
            policy: 0x30000,
            compatibility_mask: SNP,
        }]
    } else {
        Vec::new()
    };
    let file = IgvmFile::new(
        igvm::IgvmRevision::V1,
        platforms,
        inits,
        directives(b, &mut rng),
    )
    .map_err(|e| format!("the igvm builder refuses the file: {e}"))?;
    let mut out = Vec::new();
    file.serialize(&mut out)
        .map_err(|e| format!("serialize: {e}"))?;
    std::fs::write(&b.out, &out).map_err(|e| format!("{}: {e}", b.out))
}

fn parse(path: &str) -> Result<IgvmFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    IgvmFile::new_from_binary(&bytes, None).map_err(|e| format!("{path}: {e}"))
}

fn snp_mask(f: &IgvmFile) -> Result<u32, String> {
    f.platforms()
        .iter()
        .find_map(|IgvmPlatformHeader::SupportedPlatform(p)| {
            (p.platform_type == IgvmPlatformType::SEV_SNP).then_some(p.compatibility_mask)
        })
        .ok_or_else(|| "no SEV-SNP platform".to_string())
}

fn digest(path: &str) -> Result<String, String> {
    let f = parse(path)?;
    let ld = igvm::measurement::generate_snp_measurement(
        f.initializations(),
        f.directives(),
        snp_mask(&f)?,
    )
    .map_err(|e| format!("{path}: {e}"))?;
    Ok(ld.iter().map(|b| format!("{b:02x}")).collect())
}

/// The median time of hashing each SEV-SNP data page once, in ms.
fn floor(path: &str, runs: usize) -> Result<f64, String> {
    let f = parse(path)?;
    let mask = snp_mask(&f)?;
    let pages: Vec<&[u8]> = f
        .directives()
        .iter()
        .filter_map(|d| match d {
            IgvmDirectiveHeader::PageData {
                compatibility_mask,
                data,
                ..
            } if compatibility_mask & mask != 0 && !data.is_empty() => Some(data.as_slice()),
            _ => None,
        })
        .collect();
    let mut times = Vec::with_capacity(runs);
    let mut sink = 0u8;
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        for p in &pages {
            sink ^= Sha384::digest(p)[0];
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    std::hint::black_box(sink);
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn number(v: Option<String>, what: &str) -> Result<u64, String> {
    let v = v.ok_or_else(|| format!("{what} needs a value"))?;
    v.parse().map_err(|_| format!("{what}: not a number: {v}"))
}

fn build_args(mut args: impl Iterator<Item = String>) -> Result<Build, String> {
    let mut b = Build {
        seed: 1,
        out: String::new(),
        data_pages: 16,
        zero_pages: 4,
        short: false,
        vmsas: 1,
        native: false,
        policy: true,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => b.seed = number(args.next(), "--seed")?,
            "--out" => b.out = args.next().ok_or("--out needs a file")?,
            "--data-pages" => b.data_pages = number(args.next(), "--data-pages")?,
            "--zero-pages" => b.zero_pages = number(args.next(), "--zero-pages")?,
            "--vmsas" => b.vmsas = number(args.next(), "--vmsas")? as u16,
            "--short" => b.short = true,
            "--native" => b.native = true,
            "--no-policy" => b.policy = false,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if b.out.is_empty() {
        return Err("build needs --out FILE".into());
    }
    Ok(b)
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: igvm_crate_digest build --seed N --out FILE [...] | digest FILE | floor FILE RUNS";
    match args.next().as_deref() {
        Some("build") => build(&build_args(args)?),
        Some("digest") => {
            println!("{}", digest(&args.next().ok_or(usage)?)?);
            Ok(())
        }
        Some("floor") => {
            let path = args.next().ok_or(usage)?;
            let runs = number(args.next(), "RUNS")? as usize;
            println!("{:.3}", floor(&path, runs)?);
            Ok(())
        }
        _ => Err(usage.into()),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("igvm_crate_digest: {e}");
            ExitCode::from(2)
        }
    }
}
