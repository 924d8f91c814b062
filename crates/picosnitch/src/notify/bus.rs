//! Sending one notification to the desktop user's session bus
//! (`org.freedesktop.Notifications`), with notify-rust over zbus.
use picosnitch_ipc::notices::{Notice, NoticeKind};
use std::time::Duration;

/// A notification server that does not answer in this time is given up on.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The session bus of `uid`, where systemd-logind's user manager (and every desktop)
/// puts it: its runtime directory.
pub fn session_bus_address(uid: u32) -> String {
    format!("unix:path=/run/user/{uid}/bus")
}

/// How long the desktop shows it: as picosnitch 2.x (2 s) for news, until dismissed
/// for what needs attention.
fn timeout(kind: NoticeKind) -> notify_rust::Timeout {
    match kind {
        NoticeKind::FirstSeen => notify_rust::Timeout::Milliseconds(2000),
        NoticeKind::Sha256Changed | NoticeKind::VirusTotalFlagged | NoticeKind::EventsLost | NoticeKind::Error => notify_rust::Timeout::Never,
    }
}

fn urgency(kind: NoticeKind) -> notify_rust::Urgency {
    match kind {
        NoticeKind::FirstSeen => notify_rust::Urgency::Normal,
        NoticeKind::Sha256Changed | NoticeKind::VirusTotalFlagged | NoticeKind::EventsLost | NoticeKind::Error => notify_rust::Urgency::Critical,
    }
}

/// Shows `notice`: app name and summary "picosnitch" and the text as the body, as
/// picosnitch 2.x does, so existing notification rules keep matching.
pub async fn show(notice: &Notice) -> Result<(), String> {
    let body = if notice.detail.is_empty() { notice.text.clone() } else { format!("{}\n{}", notice.text, notice.detail) };
    let mut n = notify_rust::Notification::new();
    n.appname("picosnitch")
        .summary("picosnitch")
        .body(&body)
        .hint(notify_rust::Hint::Category(format!("picosnitch.{}", notice.kind.name())))
        .urgency(urgency(notice.kind))
        .timeout(timeout(notice.kind));
    let sent = futures_lite::future::or(async { Some(n.show_async().await.map_err(|e| e.to_string())) }, async {
        async_io::Timer::after(SEND_TIMEOUT).await;
        None
    })
    .await;
    match sent {
        Some(Ok(_handle)) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(format!("no answer from the notification server in {} s", SEND_TIMEOUT.as_secs())),
    }
}
