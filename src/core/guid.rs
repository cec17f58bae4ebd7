//! GUIDs in the on-disk EFI form (first three fields little-endian).

use uuid::{uuid, Uuid};

/// The GUID at the end of the OVMF footer table.
pub const OVMF_TABLE_FOOTER: Uuid = uuid!("96b582de-1fb2-45f7-baea-a366c55a082d");
/// SEV-ES reset block: the AP reset address.
pub const SEV_ES_RESET_BLOCK: Uuid = uuid!("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
/// SEV secret block: where QEMU injects LAUNCH_SECRET by default.
pub const SEV_SECRET_BLOCK: Uuid = uuid!("4c2eb361-7d9b-4cc3-8081-127c90d3d294");
/// SEV_HASH_TABLE_RV: where QEMU places the kernel hashes table.
pub const SEV_HASH_TABLE_AREA: Uuid = uuid!("7255371f-3a3b-4b04-927b-1da6efa8d454");
/// OVMF SEV metadata (SNP sections).
pub const OVMF_SEV_METADATA: Uuid = uuid!("dc886566-984a-4798-a75e-5585a7bf67cc");
/// COCONUT-SVSM info: in the SVSM image's footer table, a u32 whose value
/// plus the image's GPA is where every vCPU starts.
pub const SVSM_INFO: Uuid = uuid!("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd");

/// Kernel hashes table header and its three entries.
pub const KERNEL_HASH_TABLE: Uuid = uuid!("9438d606-4f22-4cc9-b479-a793d411fd21");
/// Kernel hashes table entry: SHA-256 of the bzImage given to `-kernel`.
pub const KERNEL_HASH_KERNEL: Uuid = uuid!("4de79437-abd2-427f-b835-d5b172d2045b");
/// Kernel hashes table entry: SHA-256 of the `-initrd` file (of no bytes without one).
pub const KERNEL_HASH_INITRD: Uuid = uuid!("44baf731-3a2f-4bd7-9af1-41e29169781d");
/// Kernel hashes table entry: SHA-256 of the `-append` command line with its NUL.
pub const KERNEL_HASH_CMDLINE: Uuid = uuid!("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");

/// EFI_SECRET_TABLE_HEADER_GUID: the secret table that OVMF and Linux `efi_secret` read.
pub const SECRET_TABLE_HEADER: Uuid = uuid!("1e74f542-71dd-4d66-963e-ef4287ff173b");
/// The disk-key secret, alias `luks-key` in the Python tool.
pub const LUKS_KEY: Uuid = uuid!("736869e5-84f0-4973-92ec-06879ce3da0b");

/// The 16 bytes of `guid` as EFI stores them.
pub fn to_le_bytes(guid: &Uuid) -> [u8; 16] {
    guid.to_bytes_le()
}
