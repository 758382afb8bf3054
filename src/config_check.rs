//! `sluice config`: the configuration in effect — defaults, then the file, then `SLUICE_*`
//! variables — checked as a role checks it at start (unknown keys, backend addresses) and
//! printed with secrets hidden, without connecting to anything. For an operator who wants to
//! see what a deployment will run with before it runs (as `vector validate` or Logstash's
//! `--config.test_and_exit` do), and for the tests that hold the Kubernetes manifests to the
//! keys Sluice reads.

use anyhow::Context;
use serde_json::Value;
use sluice_config::Config;

use crate::ConfigArgs;

/// Keys whose values are never printed.
const SECRET_KEYS: [&str; 4] = ["jwt_secret", "password", "api_key", "secret"];

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    config.queue_backend()?;
    config.store_backend()?;
    config.meta_backend()?;
    config.cache_backend()?;
    config.tls.files()?;
    let mut shown = serde_json::to_value(&config).context("showing the configuration")?;
    hide_secrets(&mut shown);
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Replaces secret values, and the credentials of URLs (`scheme://user:password@host`), with
/// a note that they are set.
fn hide_secrets(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) && !field.is_null() {
                    *field = Value::String("(set, hidden)".into());
                } else {
                    hide_secrets(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide_secrets),
        Value::String(text) => {
            if let Some((scheme, rest)) = text.split_once("://")
                && let Some((_, host)) = rest.split_once('@')
            {
                *text = format!("{scheme}://(credentials hidden)@{host}");
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_credentials_are_hidden() {
        let mut shown = serde_json::json!({
            "auth": {"jwt_secret": "k".repeat(40), "issuer": "sluice"},
            "store": {"url": "http://elastic:hunter2@es:9200", "elasticsearch": {"password": null}},
            "meta": {"url": "mongodb://mongodb:27017/sluice"},
        });
        hide_secrets(&mut shown);
        assert_eq!(shown["auth"]["jwt_secret"], "(set, hidden)");
        assert_eq!(shown["auth"]["issuer"], "sluice");
        assert_eq!(shown["store"]["url"], "http://(credentials hidden)@es:9200");
        assert_eq!(shown["store"]["elasticsearch"]["password"], Value::Null);
        assert_eq!(shown["meta"]["url"], "mongodb://mongodb:27017/sluice");
    }
}
