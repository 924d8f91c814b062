use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}:{line}:{column}: `{key}`: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, key: String, message: String },
}

impl ConfigError {
    pub(crate) fn syntax(path: &Path, text: &str, e: &toml::de::Error) -> Self {
        let (line, column) = match e.span() {
            Some(span) => position(text, span.start),
            None => (1, 1),
        };
        ConfigError::Syntax { path: path.to_path_buf(), line, column, message: e.message().trim().to_string() }
    }

    /// A semantic error for a dotted `key`, placed at the key's value in `text` (or at
    /// the nearest enclosing table when the key itself is absent and its default is bad).
    pub(crate) fn invalid(path: &Path, text: &str, key: String, message: String) -> Self {
        let (line, column) = key_position(text, &key).unwrap_or((1, 1));
        ConfigError::Invalid { path: path.to_path_buf(), line, column, key, message }
    }
}

fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut best = None;
    for segment in key.split('.') {
        match item.get(segment) {
            Some(next) => {
                item = next;
                if let Some(span) = item.span() {
                    best = Some(span.start);
                }
            }
            None => break,
        }
    }
    best.map(|offset| position(text, offset))
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
