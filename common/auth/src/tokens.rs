//! Signed tokens (JWT, HS256). An access token (1 h) authorises requests; a refresh token (30 d)
//! only buys a new pair at `/api/auth/refresh`. Both name the session they belong to, so a
//! session can be ended before its tokens expire. Verification pins the algorithm and checks
//! `exp`, `nbf`, `iss`, `aud` and the token type, so `alg: none`, another algorithm, a foreign
//! issuer or a refresh token presented as an access token are all refused.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::role::Role;
use sluice_config::AuthConfig;

const ALGORITHM: Algorithm = Algorithm::HS256;
/// Clock skew tolerated between the processes that issue and check tokens.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The username, for logs and the UI.
    pub name: String,
    pub role: Role,
    /// The session (refresh-token family) the token belongs to.
    pub sid: String,
    pub typ: TokenKind,
    /// Unique per token; a refresh token's `jti` is what rotation tracks.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Why a token was refused; each has a stable code for the 401 body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another service (issuer or audience)")]
    WrongIssuer,
    #[error("a {found:?} token was presented where an {wanted:?} token is needed")]
    WrongKind { wanted: TokenKind, found: TokenKind },
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::WrongIssuer => "token_wrong_issuer",
            TokenError::WrongKind { .. } => "token_wrong_type",
            TokenError::Invalid => "invalid_token",
        }
    }
}

/// Who a token is issued to.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub role: Role,
    pub session_id: &'a str,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenKeys {
    /// `secret` has already been checked for length (see `auth::secret`).
    pub fn new(secret: &[u8], config: &AuthConfig) -> TokenKeys {
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: Duration::from_secs(config.access_ttl_secs),
            refresh_ttl: Duration::from_secs(config.refresh_ttl_secs),
        }
    }

    /// Signs a token of `kind` for `subject`, identified by `jti`.
    pub fn issue(&self, kind: TokenKind, subject: &Subject<'_>, jti: &str) -> (String, Claims) {
        let now = sluice_event::now_ms() / 1000;
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: subject.user_id.to_owned(),
            name: subject.username.to_owned(),
            role: subject.role,
            sid: subject.session_id.to_owned(),
            typ: kind,
            jti: jti.to_owned(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        (self.sign(&claims), claims)
    }

    /// Signs exactly these claims (tests build hostile ones with it).
    pub fn sign(&self, claims: &Claims) -> String {
        // HS256 over serde-serialisable claims cannot fail: the key is any byte string.
        jsonwebtoken::encode(&Header::new(ALGORITHM), claims, &self.encoding)
            .unwrap_or_else(|e| unreachable!("HS256 signing failed: {e}"))
    }

    /// The claims of a valid, unexpired token of `kind`.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongIssuer,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != kind {
            return Err(TokenError::WrongKind {
                wanted: kind,
                found: data.claims.typ,
            });
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], &AuthConfig::default())
    }

    fn subject() -> Subject<'static> {
        Subject {
            user_id: "u1",
            username: "ada",
            role: Role::Analyst,
            session_id: "s1",
        }
    }

    fn access(keys: &TokenKeys) -> (String, Claims) {
        keys.issue(TokenKind::Access, &subject(), "j1")
    }

    /// A token with this header and these claims, and `signature` as its third part.
    fn forge(header: serde_json::Value, claims: &Claims, signature: &str) -> String {
        let encode = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = serde_json::to_value(claims).expect("claims");
        format!("{}.{}.{signature}", encode(header), encode(claims))
    }

    #[test]
    fn an_access_token_round_trips() {
        let keys = keys();
        let (token, claims) = access(&keys);
        assert_eq!(keys.verify(&token, TokenKind::Access), Ok(claims.clone()));
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn a_tampered_signature_or_payload_is_refused() {
        let keys = keys();
        let (token, mut claims) = access(&keys);
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            keys.verify(&flipped, TokenKind::Access),
            Err(TokenError::Invalid)
        );
        claims.role = Role::Admin;
        let promoted = TokenKeys::new(&[9u8; 32], &AuthConfig::default()).sign(&claims);
        assert_eq!(
            keys.verify(&promoted, TokenKind::Access),
            Err(TokenError::Invalid),
            "signed with another key"
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims).expect("json"));
        parts[1] = &payload;
        assert_eq!(
            keys.verify(&parts.join("."), TokenKind::Access),
            Err(TokenError::Invalid),
            "payload swapped under the original signature"
        );
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused() {
        let keys = keys();
        let (_, mut claims) = access(&keys);
        let now = sluice_event::now_ms() / 1000;
        claims.exp = now - 60;
        assert_eq!(
            keys.verify(&keys.sign(&claims), TokenKind::Access),
            Err(TokenError::Expired)
        );
        claims.exp = now + 3600;
        claims.nbf = now + 600;
        assert_eq!(
            keys.verify(&keys.sign(&claims), TokenKind::Access),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let keys = keys();
        let (_, claims) = access(&keys);
        let foreign_issuer = Claims {
            iss: "someone-else".into(),
            ..claims.clone()
        };
        assert_eq!(
            keys.verify(&keys.sign(&foreign_issuer), TokenKind::Access),
            Err(TokenError::WrongIssuer)
        );
        let foreign_audience = Claims {
            aud: "another-app".into(),
            ..claims
        };
        assert_eq!(
            keys.verify(&keys.sign(&foreign_audience), TokenKind::Access),
            Err(TokenError::WrongIssuer)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let keys = keys();
        let (_, claims) = access(&keys);
        for alg in ["none", "None", "NONE"] {
            let unsigned = forge(json!({"alg": alg, "typ": "JWT"}), &claims, "");
            assert_eq!(
                keys.verify(&unsigned, TokenKind::Access),
                Err(TokenError::Invalid),
                "alg {alg}"
            );
        }
        // The real HS256 signature of these claims, under a header naming another algorithm.
        let (genuine, _) = access(&keys);
        let signature = genuine.rsplit('.').next().expect("signature");
        for alg in ["HS384", "HS512", "RS256", "ES256", "EdDSA"] {
            let other = forge(json!({"alg": alg, "typ": "JWT"}), &claims, signature);
            assert_eq!(
                keys.verify(&other, TokenKind::Access),
                Err(TokenError::Invalid),
                "alg {alg}"
            );
        }
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token_nor_the_reverse() {
        let keys = keys();
        let (refresh, _) = keys.issue(TokenKind::Refresh, &subject(), "r1");
        assert_eq!(
            keys.verify(&refresh, TokenKind::Access),
            Err(TokenError::WrongKind {
                wanted: TokenKind::Access,
                found: TokenKind::Refresh
            })
        );
        let (access, _) = access(&keys);
        assert!(matches!(
            keys.verify(&access, TokenKind::Refresh),
            Err(TokenError::WrongKind { .. })
        ));
    }

    #[test]
    fn missing_claims_and_garbage_are_refused() {
        let keys = keys();
        for garbage in ["", "a.b.c", "not a token", "eyJhbGciOiJIUzI1NiJ9..", "...."] {
            assert_eq!(
                keys.verify(garbage, TokenKind::Access),
                Err(TokenError::Invalid)
            );
        }
        let without_exp = json!({"sub": "u1", "name": "ada", "role": "admin", "sid": "s",
            "typ": "access", "jti": "j", "iat": 0, "nbf": 0, "iss": "sluice", "aud": "sluice"});
        let token = jsonwebtoken::encode(
            &Header::new(ALGORITHM),
            &without_exp,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .expect("encode");
        assert_eq!(
            keys.verify(&token, TokenKind::Access),
            Err(TokenError::Invalid)
        );
    }
}
