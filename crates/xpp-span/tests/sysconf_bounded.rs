//! Issue 15: parsing an adversarial `system.conf` allocates in proportion to its text, not to
//! the channels its ranges name (ranges used to be expanded, one entry per channel: 800 MB
//! for 350 KB of `1-1023,`).
//!
//! It runs without the libtest harness (`harness = false`): the harness's own threads allocate
//! now and then, and a global counter cannot tell their allocations from ours.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xpp_span::sysconf::{self, MAX_ERRORS, MAX_INPUT_LEN};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated while parsing `text` (an upper bound of the peak).
fn allocated(text: &str) -> (usize, usize) {
    let region = Region::new(GLOBAL);
    let errors = sysconf::parse_str("system.conf", text).expect_err("adversarial").0.len();
    (region.change().bytes_allocated, errors)
}

fn main() {
    // The issue's file, a signalling line and a modifier line, each 350 KB.
    let issue = format!("fxoks={}", "1-1023,".repeat(50_000));
    let modifier = format!("fxoks=1\nalaw={}1\n", "1-1023,".repeat(50_000));
    let mut at_cap = String::from("fxoks=1-1023");
    while at_cap.len() + ",1-1023".len() <= MAX_INPUT_LEN {
        at_cap += ",1-1023";
    }
    for (name, text, errors) in
        [("issue", &issue, 1), ("modifier", &modifier, MAX_ERRORS), ("at cap", &at_cap, MAX_ERRORS)]
    {
        let (bytes, n) = allocated(text);
        assert_eq!(n, errors, "{name}");
        // One item entry per `1-1023` (16 bytes for 7 of text) in a doubling vector: about
        // 5 times the text; per channel it would be 2000 times.
        assert!(bytes <= 8 * text.len(), "{name}: {bytes} bytes allocated for {} bytes of text", text.len());
        println!("sysconf_bounded: {name}: {} bytes of text, {bytes} bytes allocated", text.len());
    }
}
