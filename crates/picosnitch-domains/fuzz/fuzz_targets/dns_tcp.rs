#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(seg) = picosnitch_domains::parse_tcp_segment(data) {
        assert!(seg.answers.len() <= picosnitch_domains::dns::MAX_TCP_MESSAGES);
        assert!(seg.next_message_at <= data.len() + 65_537);
        seg.answers.iter().for_each(picosnitch_domains::fuzzing::check_answer);
    }
});
