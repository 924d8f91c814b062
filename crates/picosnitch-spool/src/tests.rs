use super::*;
use std::io::Write;
use std::path::Path;

fn payload(i: u32) -> Vec<u8> {
    format!("record {i} {}", "x".repeat(i as usize % 50)).into_bytes()
}

fn drain(r: &mut Reader) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for _ in 0..10_000 {
        let recs = r.peek(7, 1 << 20).expect("peek");
        let Some(last) = recs.last() else { break };
        let end = last.end;
        got.extend(recs.into_iter().map(|r| r.payload));
        r.consume(end).expect("consume");
    }
    got
}

fn segments(dir: &Path) -> usize {
    usage(dir).expect("usage").segments as usize
}

#[test]
fn records_come_out_in_order_across_segments_and_delivered_segments_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let mut a = Appender::open(&spool, 10 << 20).expect("open").with_segment_max(200);
    for i in 0..100 {
        assert!(matches!(a.append(&payload(i)).expect("append"), Appended::Stored { .. }));
    }
    assert!(segments(&spool) > 10, "small segments rotate");
    let mut r = Reader::new(&spool);
    // Peeking does not consume.
    let first = r.peek(3, 1 << 20).expect("peek");
    assert_eq!(first, r.peek(3, 1 << 20).expect("peek again"));
    assert_eq!(drain(&mut r), (0..100).map(payload).collect::<Vec<_>>());
    assert_eq!(segments(&spool), 1, "only the newest segment stays, for the writer");
    // More arrive in the newest segment and after it.
    for i in 100..110 {
        a.append(&payload(i)).expect("append");
    }
    assert_eq!(drain(&mut r), (100..110).map(payload).collect::<Vec<_>>());
    assert_eq!(r.torn_tails, 0);
}

#[test]
fn a_full_spool_refuses_records_until_some_are_consumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Appender::open(dir.path(), 1000).expect("open").with_segment_max(300);
    let mut stored = 0;
    let mut full = 0;
    for i in 0..40 {
        match a.append(&payload(i)).expect("append") {
            Appended::Stored { bytes_used } => {
                assert!(bytes_used <= 1000);
                stored += 1;
            }
            Appended::Full { bytes_used, needed } => {
                assert!(bytes_used + needed > 1000);
                full += 1;
            }
        }
    }
    assert!(stored > 5 && full > 5, "stored {stored}, full {full}");
    assert!(usage(dir.path()).expect("usage").bytes <= 1000);
    let mut r = Reader::new(dir.path());
    assert_eq!(drain(&mut r).len(), stored);
    assert!(matches!(a.append(&payload(1)).expect("append"), Appended::Stored { .. }), "room again");
}

#[test]
fn a_torn_tail_waits_while_newest_and_is_skipped_once_the_writer_moved_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Appender::open(dir.path(), 1 << 20).expect("open");
    a.append(b"one").expect("append");
    a.append(b"two").expect("append");
    drop(a);
    // A crash in the middle of the third record.
    let seg = std::fs::read_dir(dir.path()).expect("dir").next().expect("segment").expect("entry").path();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).expect("open segment");
    f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, b'p', b'a']).expect("torn write");
    drop(f);
    let mut r = Reader::new(dir.path());
    let recs = r.peek(10, 1 << 20).expect("peek");
    assert_eq!(recs.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(), vec![b"one".to_vec(), b"two".to_vec()]);
    r.consume(recs[1].end).expect("consume");
    assert!(r.peek(10, 1 << 20).expect("peek").is_empty(), "may still be being written: wait");
    // The restarted writer starts a new segment; the torn tail is now known torn.
    let mut a = Appender::open(dir.path(), 1 << 20).expect("reopen");
    a.append(b"three").expect("append");
    assert_eq!(drain(&mut r), vec![b"three".to_vec()]);
    assert_eq!(r.torn_tails, 1);
    assert_eq!(segments(dir.path()), 1);
}

#[test]
fn a_corrupted_record_in_an_older_segment_is_skipped_not_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Appender::open(dir.path(), 1 << 20).expect("open").with_segment_max(30);
    for p in [b"aaaa", b"bbbb", b"cccc"] {
        a.append(p).expect("append");
    }
    // Flip the last payload byte of the first segment (its second record, "bbbb").
    let first = dir.path().join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&first).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, bytes).expect("write");
    let mut r = Reader::new(dir.path());
    assert_eq!(drain(&mut r), vec![b"aaaa".to_vec(), b"cccc".to_vec()]);
    assert_eq!(r.torn_tails, 1);
}

#[test]
fn a_new_reader_starts_at_the_oldest_record_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Appender::open(dir.path(), 1 << 20).expect("open").with_segment_max(40);
    for i in 0..20 {
        a.append(&payload(i)).expect("append");
    }
    let mut r = Reader::new(dir.path());
    let recs = r.peek(5, 1 << 20).expect("peek");
    r.consume(recs[4].end).expect("consume");
    // A restarted reader does not know what was consumed inside the oldest segment
    // left: it starts there (the remote skips batches it already has).
    let mut again = Reader::new(dir.path());
    let got = drain(&mut again);
    assert!(got.len() >= 15 && got.len() < 20, "{}", got.len());
    assert_eq!(got.last(), Some(&payload(19)));
}

#[test]
fn foreign_files_are_refused_and_other_names_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    std::fs::write(dir.path().join("00000000000000000001.seg"), "PSSPOOL9 something").expect("write");
    let mut r = Reader::new(dir.path());
    let err = r.peek(1, 100).expect_err("foreign");
    assert!(err.to_string().contains("not a spool segment"), "{err}");
    assert_eq!(usage(dir.path()).expect("usage").segments, 1);
}

#[test]
fn oversized_and_empty_records_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Appender::open(dir.path(), 64 << 20).expect("open");
    assert!(a.append(b"").is_err());
    assert!(a.append(&vec![0u8; (16 << 20) + 1]).is_err());
}
