#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| polymls_fuzz::kdf_differential(data));
