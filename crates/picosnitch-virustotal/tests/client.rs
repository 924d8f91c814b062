//! The client against a local HTTPS VirusTotal (the `fake` module): every answer the
//! role relies on, TLS verification, and the upload's bytes arriving whole.
use picosnitch_virustotal::fake::FakeVirusTotal;
use picosnitch_virustotal::{AnalysisState, Client, ClientConfig, Lookup, Stats, VtError};
use std::time::Duration;

const KEY: &str = "test-key-0123";
const KNOWN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const UNANALYSED: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const UNKNOWN: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

fn client(fake: &FakeVirusTotal, key: &str, ca: Option<&str>) -> Client {
    Client::new(ClientConfig {
        api_url: fake.url(),
        api_key: key.into(),
        ca_pem: ca.map(|c| c.as_bytes().to_vec()),
        timeout: Duration::from_secs(10),
    })
    .expect("client")
}

#[test]
fn lookups_give_stats_not_found_and_the_errors() {
    let fake = FakeVirusTotal::start(KEY).expect("fake VirusTotal");
    let flagged = Stats { malicious: 5, suspicious: 1, undetected: 60, harmless: 2, ..Default::default() };
    fake.add_file(KNOWN, Some(flagged));
    fake.add_file(UNANALYSED, None);
    let c = client(&fake, KEY, Some(fake.ca_pem()));
    assert_eq!(c.lookup(KNOWN).expect("known"), Lookup::Known(flagged));
    assert_eq!(c.lookup(UNANALYSED).expect("unanalysed"), Lookup::Unanalysed);
    assert_eq!(c.lookup(UNKNOWN).expect("unknown"), Lookup::NotFound);
    assert!(matches!(c.lookup("not-a-hash"), Err(VtError::Api { status: 0, .. })));

    let wrong = client(&fake, "wrong", Some(fake.ca_pem()));
    match wrong.lookup(KNOWN) {
        Err(e @ VtError::Credentials { .. }) => {
            assert!(e.to_string().contains("WrongCredentialsError"), "{e}");
            assert!(!e.is_transient());
        }
        other => panic!("expected a credentials error, got {other:?}"),
    }

    fake.set_quota(Some(1));
    assert_eq!(c.lookup(KNOWN).expect("last request of the quota"), Lookup::Known(flagged));
    match c.lookup(KNOWN) {
        Err(e @ VtError::Quota { .. }) => assert!(e.is_transient()),
        other => panic!("expected a quota error, got {other:?}"),
    }
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 401, 200, 429], "not-a-hash must not reach the server");
}

#[test]
fn tls_is_verified() {
    let fake = FakeVirusTotal::start(KEY).expect("fake VirusTotal");
    fake.add_file(KNOWN, Some(Stats::default()));
    // Mozilla's roots do not include the test CA.
    match client(&fake, KEY, None).lookup(KNOWN) {
        Err(VtError::Transport { source, .. }) => assert!(source.to_string().to_lowercase().contains("cert"), "{source}"),
        other => panic!("an unknown issuer must be refused, got {other:?}"),
    }
    // Nor does another server's CA.
    let other = FakeVirusTotal::start(KEY).expect("second fake");
    assert!(matches!(client(&fake, KEY, Some(other.ca_pem())).lookup(KNOWN), Err(VtError::Transport { .. })));
    assert!(fake.requests().is_empty(), "no request may pass an unverified connection");
    assert!(matches!(
        Client::new(ClientConfig { api_url: fake.url(), api_key: KEY.into(), ca_pem: Some(b"junk".to_vec()), timeout: Duration::from_secs(1) }),
        Err(VtError::BadCertificate(_))
    ));
}

#[test]
fn an_upload_arrives_whole_and_its_analysis_completes() {
    let fake = FakeVirusTotal::start(KEY).expect("fake VirusTotal");
    let verdict = Stats { malicious: 2, undetected: 50, ..Default::default() };
    fake.set_upload_verdict(verdict);
    let c = client(&fake, KEY, Some(fake.ca_pem()));
    // 300 KiB with every byte value, so framing mistakes show.
    let content: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let id = c.upload(&mut content.as_slice(), content.len() as u64, "evil\"name\n").expect("upload");
    assert_eq!(c.analysis(&id).expect("first poll"), AnalysisState::Pending);
    assert_eq!(c.analysis(&id).expect("second poll"), AnalysisState::Completed(verdict));
    let uploads: Vec<_> = fake.requests().into_iter().filter_map(|r| r.uploaded).collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].1, content.len());
    // The fake's sha256 of what arrived equals that of the original.
    let digest: String = sha256(&content).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(uploads[0].0, digest);
    // The uploaded file is known from then on.
    assert_eq!(c.lookup(&digest).expect("lookup"), Lookup::Known(verdict));
    assert!(matches!(c.upload(&mut std::io::empty(), picosnitch_virustotal::MAX_SIMPLE_UPLOAD + 1, "big"), Err(VtError::TooLarge { .. })));
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
