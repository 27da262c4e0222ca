#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xpp_usb::middleware::fuzzing::usb_descriptors(data));
