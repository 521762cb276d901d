//! Password hashing with argon2id at the OWASP-recommended parameters
//! (19 MiB memory, 2 iterations, 1 lane), always off the async runtime.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LENGTH: usize = 12;
/// Long enough for any passphrase, short enough that hashing cannot be used to burn CPU.
pub const MAX_LENGTH: usize = 256;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the password policy; the message is shown to the person choosing it.
pub fn check_policy(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!(
            "The password must be at least {MIN_LENGTH} characters long (it has {length})."
        ));
    }
    if length > MAX_LENGTH {
        return Err(format!(
            "The password must be at most {MAX_LENGTH} characters long."
        ));
    }
    Ok(())
}

/// Hashes a password into a PHC string. Runs on a blocking thread.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
    })
    .await?
}

/// Verifies a password against a stored PHC string, or against a dummy hash when the
/// account does not exist, so that the answer takes the same time either way.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"no account has this password", &salt)
            .expect("hashing a constant works")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let stored = hash("correct horse battery".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery".into(), Some(stored.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(stored)).await);
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("no account has this password".into(), None).await);
    }

    #[test]
    fn short_passwords_are_refused_with_their_length() {
        let message = check_policy("short").unwrap_err();
        assert!(message.contains("at least 12"), "{message}");
        assert!(check_policy("twelve chars").is_ok());
    }
}
