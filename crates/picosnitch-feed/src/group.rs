//! Which group owns a file, by name: the error messages of every reader of picosnitch's
//! files (the feed, the history in the TUI and the web UI) name the group to join.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The name of the group owning `path`, from /etc/group; None when either is unknown.
pub fn owning_group(path: &Path) -> Option<String> {
    let gid = std::fs::metadata(path).ok()?.gid();
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.parse::<u32>().ok()? == gid).then(|| name.to_string())
    })
}
