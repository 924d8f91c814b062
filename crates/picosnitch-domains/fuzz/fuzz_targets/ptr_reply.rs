#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    picosnitch_domains::fuzzing::check_ptr_reply(data);
});
