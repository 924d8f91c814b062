#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(name)) = picosnitch_domains::server_name(data) {
        picosnitch_domains::fuzzing::check_name(&name);
    }
});
