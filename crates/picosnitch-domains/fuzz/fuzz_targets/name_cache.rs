#![no_main]
use libfuzzer_sys::fuzz_target;

// Answers parsed from the input go into a small cache: it never exceeds its bounds.
fuzz_target!(|data: &[u8]| {
    picosnitch_domains::fuzzing::cache_stays_bounded(data);
});
