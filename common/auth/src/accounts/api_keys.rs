//! Producer API keys: long random secrets for shippers, good for ingest only. The secret is shown
//! once; the store keeps its SHA-256 (a 256-bit random key needs no slow hash: there is nothing
//! to guess). Keys are sent as `Authorization: ApiKey <key>`, or as Elasticsearch clients send
//! them, `ApiKey base64(id:key)`, so Filebeat or Logstash configured with an ES API key work.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{API_KEYS, AccountError, Accounts, User, new_id};
use sluice_meta::{MetaError, Page};

/// Every key starts with this, so a leaked one is recognisable (secret scanners, logs).
const KEY_PREFIX: &str = "slk_";
/// How long a key is taken on the cache's word; revoking clears the entry at once.
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// A user's keys are listed in full; this bounds the listing.
const MAX_KEYS_PER_USER: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    #[serde(skip_deserializing, default)]
    pub id: String,
    pub name: String,
    pub user_id: String,
    /// SHA-256 of the secret, hex.
    #[serde(skip_serializing)]
    #[schema(ignore)]
    hash: String,
    /// The first characters of the secret, to tell keys apart.
    pub prefix: String,
    pub created_at: i64,
    /// The key's own quota, where an administrator gave it one.
    #[serde(default)]
    pub quota: KeyQuota,
}

/// A key's own quota, in place of the defaults of `[ingest.quota]`: a measure left unset (null)
/// takes the default; 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// For the schema (`additionalProperties: false`); the deserializer below refuses them.
#[serde(deny_unknown_fields)]
pub struct KeyQuota {
    /// Records a second.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub events_per_sec: Option<u32>,
    /// Record bytes a second, decompressed.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub bytes_per_sec: Option<u32>,
}

impl<'de> Deserialize<'de> for KeyQuota {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeyQuota, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            #[serde(default, deserialize_with = "rate")]
            events_per_sec: Option<u32>,
            #[serde(default, deserialize_with = "rate")]
            bytes_per_sec: Option<u32>,
        }
        // An object only: serde would also take the fields, in order, from an array.
        let object = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let fields: Fields =
            serde_json::from_value(Value::Object(object)).map_err(serde::de::Error::custom)?;
        Ok(KeyQuota {
            events_per_sec: fields.events_per_sec,
            bytes_per_sec: fields.bytes_per_sec,
        })
    }
}

/// The most a quota's rate may be, as a JSON Schema `int32` may be.
const MAX_RATE: u32 = i32::MAX as u32;

/// A rate: a whole number from 0 to [`MAX_RATE`] in any form JSON writes one (`1830`,
/// `1830.0`), or null.
fn rate<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = match number.as_u64() {
        Some(whole) => Some(whole),
        None => number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && *value >= 0.0 && *value <= f64::from(MAX_RATE))
            .map(|value| value as u64),
    };
    whole
        .and_then(|whole| u32::try_from(whole).ok())
        .filter(|whole| *whole <= MAX_RATE)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "a rate is a whole number from 0 to {MAX_RATE}, or null; got {number}"
            ))
        })
}

/// A key just created, with the one copy of its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// For `Authorization: ApiKey <api_key>`.
    pub api_key: String,
    /// `base64(id:api_key)`, the form Elasticsearch clients send.
    pub encoded: String,
}

/// Who sent a request authenticated by an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyPrincipal {
    pub key_id: String,
    pub name: String,
    pub user_id: String,
    /// Read with the key, so ingest needs no lookup of its own.
    #[serde(default)]
    pub quota: KeyQuota,
}

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cache_key(hash: &str) -> String {
    format!("api-key:{hash}")
}

/// The secret inside an `ApiKey` credential, in either form.
fn secret_of(credential: &str) -> Option<String> {
    let credential = credential.trim();
    if credential.starts_with(KEY_PREFIX) {
        return Some(credential.to_owned());
    }
    let decoded = STANDARD.decode(credential).ok()?;
    let (_, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    secret.starts_with(KEY_PREFIX).then(|| secret.to_owned())
}

impl ApiKey {
    fn stored(&self) -> Value {
        let mut document = serde_json::to_value(self).unwrap_or(Value::Null);
        document["hash"] = json!(self.hash);
        document
    }

    fn from_stored(id: String, document: Value) -> Result<ApiKey, AccountError> {
        let hash = document["hash"].as_str().unwrap_or_default().to_owned();
        let mut key: ApiKey = serde_json::from_value(document).map_err(|e| MetaError::Corrupt {
            collection: API_KEYS.name,
            id: id.clone(),
            detail: e.to_string(),
        })?;
        key.id = id;
        key.hash = hash;
        Ok(key)
    }
}

impl Accounts {
    /// A new key for `owner`, with its own `quota` (the caller decides who may give one).
    pub async fn create_api_key(
        &self,
        owner: &User,
        name: &str,
        quota: KeyQuota,
    ) -> Result<NewApiKey, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AccountError::Invalid {
                field: "name",
                reason: "must be 1 to 100 characters, without control characters".into(),
            });
        }
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
        let key = ApiKey {
            id: new_id("k"),
            name: name.to_owned(),
            user_id: owner.id.clone(),
            hash: digest(&secret),
            prefix: secret[..KEY_PREFIX.len() + 6].to_owned(),
            created_at: sluice_event::now_ms(),
            quota,
        };
        self.meta.insert(&API_KEYS, &key.id, &key.stored()).await?;
        let encoded = STANDARD.encode(format!("{}:{secret}", key.id));
        Ok(NewApiKey {
            key,
            api_key: secret,
            encoded,
        })
    }

    pub async fn api_keys_of(&self, user_id: &str) -> Result<Vec<ApiKey>, AccountError> {
        self.meta
            .find(
                &API_KEYS,
                &[("user_id", json!(user_id))],
                Page {
                    offset: 0,
                    limit: MAX_KEYS_PER_USER,
                },
            )
            .await?
            .into_iter()
            .map(|(id, document)| ApiKey::from_stored(id, document))
            .collect()
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, AccountError> {
        self.meta
            .get(&API_KEYS, id)
            .await?
            .map(|document| ApiKey::from_stored(id.to_owned(), document))
            .transpose()
    }

    /// Revokes key `id`: its owner's, or anyone's for an admin.
    pub async fn revoke_api_key(&self, actor: &User, id: &str) -> Result<(), AccountError> {
        let key = self
            .api_key(id)
            .await?
            .filter(|key| key.user_id == actor.id || actor.role == crate::Role::Admin)
            .ok_or(AccountError::NotFound("API key"))?;
        self.meta.delete(&API_KEYS, id).await?;
        self.cache.delete(&cache_key(&key.hash)).await?;
        Ok(())
    }

    /// Gives key `id` its own quota (an administrator's decision: the caller checks). It holds
    /// from the key's next request where the cache is shared (Redis, or one process), within a
    /// minute elsewhere, as a revocation does.
    pub async fn set_api_key_quota(
        &self,
        id: &str,
        quota: KeyQuota,
    ) -> Result<ApiKey, AccountError> {
        let mut key = self
            .api_key(id)
            .await?
            .ok_or(AccountError::NotFound("API key"))?;
        key.quota = quota;
        if !self.meta.replace(&API_KEYS, id, &key.stored(), &[]).await? {
            return Err(AccountError::NotFound("API key"));
        }
        self.cache.delete(&cache_key(&key.hash)).await?;
        Ok(key)
    }

    pub(super) async fn revoke_api_keys_of(&self, user_id: &str) -> Result<(), AccountError> {
        for key in self.api_keys_of(user_id).await? {
            self.meta.delete(&API_KEYS, &key.id).await?;
            self.cache.delete(&cache_key(&key.hash)).await?;
        }
        Ok(())
    }

    /// The key a credential names, if it is a live one.
    pub async fn authenticate_api_key(
        &self,
        credential: &str,
    ) -> Result<ApiKeyPrincipal, AccountError> {
        let secret = secret_of(credential).ok_or(AccountError::InvalidApiKey)?;
        let hash = digest(&secret);
        let cached = self.cache.get(&cache_key(&hash)).await?;
        if let Some(principal) = cached.and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
            return Ok(principal);
        }
        let (id, document) = self
            .meta
            .find_one(&API_KEYS, &[("hash", json!(hash))])
            .await?
            .ok_or(AccountError::InvalidApiKey)?;
        let key = ApiKey::from_stored(id, document)?;
        let principal = ApiKeyPrincipal {
            key_id: key.id,
            name: key.name,
            user_id: key.user_id,
            quota: key.quota,
        };
        let remembered = serde_json::to_vec(&principal).unwrap_or_default();
        self.cache
            .set(&cache_key(&hash), remembered, KNOWN_FOR)
            .await?;
        Ok(principal)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_rate_is_a_whole_number_in_range_however_json_writes_it() {
        let quota = |text: &str| serde_json::from_str::<KeyQuota>(text);
        let read = quota(r#"{"events_per_sec": 1830.0, "bytes_per_sec": null}"#).expect("whole");
        assert_eq!(read.events_per_sec, Some(1830));
        assert_eq!(read.bytes_per_sec, None);
        assert_eq!(quota("{}").expect("empty").events_per_sec, None);
        for refused in [
            r#"{"events_per_sec": -1}"#,
            r#"{"events_per_sec": 1.5}"#,
            r#"{"bytes_per_sec": 2147483648}"#,
            r#"{"bytes_per_sec": "100"}"#,
            r#"{"rate": 1}"#,
            "[null, null]",
        ] {
            assert!(quota(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn both_credential_forms_give_the_secret() {
        let secret = "slk_abcdefghijklmnop";
        assert_eq!(secret_of(secret).as_deref(), Some(secret));
        let encoded = STANDARD.encode(format!("k_1:{secret}"));
        assert_eq!(secret_of(&encoded).as_deref(), Some(secret));
        assert_eq!(secret_of("not-a-key"), None);
        assert_eq!(secret_of(&STANDARD.encode("id:password")), None);
    }
}
