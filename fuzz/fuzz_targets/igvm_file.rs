#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sev_validate_fuzz::igvm_file(data));
