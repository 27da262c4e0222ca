#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xpp_span::fuzzing::bus_layout(data));
