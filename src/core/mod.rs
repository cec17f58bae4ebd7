//! The pure core: formats and cryptography, no I/O beyond the readers it is
//! handed.

pub mod cpu;
pub mod guid;
pub mod id_block;
pub mod kernel_hashes;
pub mod keys;
pub mod measurement;
pub mod ovmf;
pub mod secret;
pub mod snp;
pub mod vmsa;
