#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xpp_proto::fuzzing::hex_file(data));
