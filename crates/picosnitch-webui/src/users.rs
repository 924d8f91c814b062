//! User names for uids, read once from /etc/passwd before the web UI confines itself
//! (it cannot read it afterwards). Users only a directory service knows show as
//! numbers.
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct UserNames(HashMap<i64, String>);

impl UserNames {
    pub fn load() -> UserNames {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => UserNames::parse(&text),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read /etc/passwd; users show as numbers");
                UserNames::default()
            }
        }
    }

    pub fn parse(text: &str) -> UserNames {
        UserNames(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let uid = f.nth(1)?.parse().ok()?;
                    Some((uid, name.to_string()))
                })
                .collect(),
        )
    }

    pub fn name(&self, uid: i64) -> Option<String> {
        self.0.get(&uid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_passwd_lines() {
        let u = UserNames::parse("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken\n");
        assert_eq!(u.name(1000).as_deref(), Some("alice"));
        assert_eq!(u.name(0).as_deref(), Some("root"));
        assert_eq!(u.name(7), None);
    }
}
