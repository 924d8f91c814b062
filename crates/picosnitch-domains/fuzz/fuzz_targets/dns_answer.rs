#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = picosnitch_domains::parse_answer(data) {
        picosnitch_domains::fuzzing::check_answer(&a);
    }
});
