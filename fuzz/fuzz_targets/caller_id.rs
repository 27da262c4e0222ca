#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xpp_emu::fuzzing::caller_id(data));
