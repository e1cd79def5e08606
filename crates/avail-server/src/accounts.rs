//! `avail-server user add|list|remove|passwd`: account management on the data directory.
//! Passwords are turned into digest HA1 values (MD5 and SHA-256, RFC 7616 §3.4.2) for the
//! account's own domain, which is the realm the server challenges with; the password itself
//! is never stored.

use std::io::BufRead;

use sip_auth::{ha1, Algorithm};
use store::Store;

use crate::cli::UserCommand;
use crate::config::Config;
use crate::server::BoxError;

pub async fn run(config: &Config, command: UserCommand) -> Result<(), BoxError> {
    let store = Store::open(&config.data_dir).await?;
    match command {
        UserCommand::Add { address, password } => {
            let (user, domain) = split_address(&address)?;
            let password = password_or_stdin(password)?;
            let (md5, sha256) = hashes(user, domain, &password);
            store.add_account(user, domain, &md5, &sha256).await?;
            if !config.serves(domain) {
                eprintln!(
                    "note: {domain} is not among the served domains {:?}",
                    config.domains
                );
            }
            println!("added {user}@{domain}");
        }
        UserCommand::List => {
            for (user, domain) in store.list_accounts().await? {
                println!("{user}@{domain}");
            }
        }
        UserCommand::Remove { address } => {
            let (user, domain) = split_address(&address)?;
            store.remove_account(user, domain).await?;
            println!("removed {user}@{domain}");
        }
        UserCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            let mut added = 0usize;
            for (number, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let (address, password) =
                    line.trim().split_once(char::is_whitespace).ok_or_else(|| {
                        format!("line {}: expected `user@domain password`", number + 1)
                    })?;
                let (user, domain) = split_address(address)?;
                let (md5, sha256) = hashes(user, domain, password.trim());
                store.add_account(user, domain, &md5, &sha256).await?;
                added += 1;
            }
            println!("added {added} accounts");
        }
        UserCommand::Passwd { address, password } => {
            let (user, domain) = split_address(&address)?;
            let password = password_or_stdin(password)?;
            let (md5, sha256) = hashes(user, domain, &password);
            store
                .set_account_hashes(user, domain, &md5, &sha256)
                .await?;
            println!("password changed for {user}@{domain}");
        }
    }
    Ok(())
}

fn hashes(user: &str, domain: &str, password: &str) -> (String, String) {
    (
        ha1(Algorithm::Md5, user, domain, password),
        ha1(Algorithm::Sha256, user, domain, password),
    )
}

/// `user@domain`, optionally written as a SIP URI; the user part must be usable as a digest
/// username and a SIP user (no escapes needed).
fn split_address(address: &str) -> Result<(&str, &str), BoxError> {
    let bare = address.strip_prefix("sip:").unwrap_or(address);
    let (user, domain) = bare
        .split_once('@')
        .ok_or_else(|| format!("`{address}` is not user@domain"))?;
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b));
    if !user_ok {
        return Err(format!("`{user}` is not a valid user name").into());
    }
    if domain.is_empty() || domain.contains(['@', ':', '/', ' ']) {
        return Err(format!("`{domain}` is not a valid domain").into());
    }
    Ok((user, domain))
}

fn password_or_stdin(password: Option<String>) -> Result<String, BoxError> {
    let password = match password {
        Some(password) => password,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err("the password must not be empty".into());
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_and_checked() {
        assert_eq!(
            split_address("alice@example.com").unwrap(),
            ("alice", "example.com")
        );
        assert_eq!(
            split_address("sip:bob@example.org").unwrap(),
            ("bob", "example.org")
        );
        assert!(split_address("alice").is_err());
        assert!(split_address("@example.com").is_err());
        assert!(split_address("al ice@example.com").is_err());
        assert!(split_address("alice@").is_err());
    }
}
