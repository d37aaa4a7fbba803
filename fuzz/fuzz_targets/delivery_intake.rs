#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    polymls_fuzz::delivery_intake(data);
});
