//! Passwords: the strength policy, and bcrypt hashing off the async runtime (a cost-12 hash
//! takes a quarter of a second of CPU).

/// bcrypt reads at most 72 bytes; longer passwords would be silently cut, so they are refused.
pub const MAX_BYTES: usize = 72;
pub const MIN_CHARS: usize = 10;

/// Passwords that pass the character rules but are first in every attacker's list.
const COMMON: &[&str] = &[
    "password1!",
    "password123",
    "password123!",
    "p@ssw0rd123",
    "qwerty12345",
    "1234567890ab",
    "letmein1234",
    "welcome123!",
    "administrator1",
    "changeme123",
];

/// Why a password is refused, said so the user can pick a better one.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(format!(
            "must be at least {MIN_CHARS} characters (got {chars})"
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(format!(
            "must be at most {MAX_BYTES} bytes (got {})",
            password.len()
        ));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .into_iter()
    .filter(|&present| present)
    .count();
    // A long passphrase is strong without mixing character classes.
    if classes < 3 && chars < 16 {
        return Err(
            "must mix at least three of lower case, upper case, digits and symbols \
             (or be 16 characters or more)"
                .into(),
        );
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("must not contain the username".into());
    }
    if COMMON.contains(&lower.as_str()) {
        return Err("is one of the most common passwords".into());
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("hashing the password failed: {0}")]
pub struct HashError(String);

/// A bcrypt hash of `password` at `cost`, computed on the blocking pool.
pub async fn hash(password: &str, cost: u32) -> Result<String, HashError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| HashError(e.to_string()))?
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `hash`; a malformed hash matches nothing.
pub async fn verify(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_says_what_is_wrong() {
        assert!(check_policy("Sh0rt!", "ada").unwrap_err().contains("10"));
        assert!(
            check_policy("alllowercaseletters", "ada").is_ok(),
            "a long passphrase"
        );
        assert!(
            check_policy("lowercase12", "ada")
                .unwrap_err()
                .contains("three")
        );
        assert!(
            check_policy("Ada-Lovelace-1", "ada")
                .unwrap_err()
                .contains("username")
        );
        assert!(
            check_policy("Sunset-River-42", "bob").is_ok(),
            "mixed classes, not in the common list"
        );
        assert!(
            check_policy("P@ssw0rd123", "bob")
                .unwrap_err()
                .contains("common")
        );
        assert!(
            check_policy(&"Aa1!".repeat(19), "bob")
                .unwrap_err()
                .contains("72")
        );
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let hashed = hash("Correct-Horse-9", 4).await.expect("hash");
        assert!(hashed.starts_with("$2b$04$"));
        assert!(verify("Correct-Horse-9", &hashed).await);
        assert!(!verify("correct-horse-9", &hashed).await);
        assert!(!verify("Correct-Horse-9", "not a hash").await);
    }
}
