#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xpp_proto::fuzzing::pic_echo_packet(data));
