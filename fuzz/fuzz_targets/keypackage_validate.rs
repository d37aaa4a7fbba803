#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| polymls_fuzz::keypackage_validate(data));
