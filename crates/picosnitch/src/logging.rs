//! Logs go to journald when systemd started us (JOURNAL_STREAM is set), else stderr.
//! Every line carries the role, so one journal shows the whole pipeline.
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Sets up logging for this process; callers enter a span naming the role.
pub fn init() {
    let filter = EnvFilter::try_from_env("PICOSNITCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(layer) = tracing_journald::layer() {
            let layer = layer.with_syslog_identifier("picosnitch".into()).with_field_prefix(None);
            let _ = registry.with(layer).try_init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = registry.with(fmt).try_init();
}
