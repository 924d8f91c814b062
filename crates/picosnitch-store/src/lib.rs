//! picosnitch's local history in SQLite, schema-compatible with picosnitch 2.x so its
//! documented queries keep working. Only the writer role opens it read-write; UIs and
//! `picosnitch query` open it read-only.
mod aggregate;
mod error;
mod history;
mod joined;
mod known;
mod query;
mod record;
mod render;
mod schema;
mod store;
mod summary;
mod time;
mod verdict;

pub use aggregate::Aggregator;
pub use error::StoreError;
pub use known::KnownExe;
pub use history::{
    Dimension, ExeField, Filter, GroupKey, HistoryAnswer, HistoryQuery, HistoryRow, QueryInterrupt, Role, SeriesAnswer, SeriesLine, SeriesQuery, TimeRange,
    Totals,
};
pub use query::{TopQuery, TopRow};
pub use record::{ConnectionRecord, ExeRecord};
pub use render::{human_bytes, render_csv, render_json, render_table};
pub use schema::SCHEMA_VERSION;
pub use store::{Delivery, OpenReport, PruneReport, Store, SummaryCheck};
pub use verdict::{Verdict, VerdictResult};
pub use time::{unix_days_ago, unix_minutes_ago, unix_now};
