#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(answers) = picosnitch_domains::parse_tcp_segment(data) {
        assert!(answers.len() <= picosnitch_domains::dns::MAX_TCP_MESSAGES);
        answers.iter().for_each(picosnitch_domains::fuzzing::check_answer);
    }
});
