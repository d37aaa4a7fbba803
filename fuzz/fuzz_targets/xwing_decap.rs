#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| polymls_fuzz::xwing_decap(data));
