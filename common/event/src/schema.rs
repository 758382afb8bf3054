//! The fields Sluice knows, their types and which log types require them. One table drives
//! validation, CSV typing (a CSV cell is text; the table says what it should become) and docs.

use std::sync::LazyLock;

use super::LogType;

/// The JSON type a known field must have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    Text,
    /// A number; `min`/`max` bound it where a bound makes sense (amounts are never negative).
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    /// Text that must parse as an IPv4 or IPv6 address.
    Ip,
    /// RFC 3339 text or epoch milliseconds.
    Timestamp,
    /// Text or an integer: error codes come as `"E1042"` from some services and `500` from others.
    Code,
    /// An array of text (fraud indicators detected upstream).
    TextList,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    /// Log types for which a missing value is an error.
    pub required_by: &'static [LogType],
}

use FieldKind::*;
use LogType::*;

const NON_NEGATIVE: FieldKind = Number {
    min: Some(0.0),
    max: None,
};

/// Every known field. Fields not listed here are kept as they come, bounded only in size.
pub const FIELDS: &[FieldSpec] = &[
    spec(
        "log_type",
        Text,
        &[Transaction, Error, UserBehavior, Performance, Fraud],
    ),
    spec("timestamp", Timestamp, &[]),
    spec("@timestamp", Timestamp, &[]),
    spec("event_id", Text, &[]),
    spec("level", Text, &[]),
    spec("service", Text, &[]),
    spec("message", Text, &[]),
    spec("ip", Ip, &[]),
    spec("user_id", Code, &[Transaction, UserBehavior]),
    // transaction
    spec("transaction_id", Code, &[Transaction, Fraud]),
    spec("amount", NON_NEGATIVE, &[Transaction]),
    spec("currency", Text, &[]),
    spec("payment_method", Text, &[]),
    spec("status", Text, &[]),
    spec("product_id", Code, &[]),
    spec("product_name", Text, &[]),
    spec("category", Text, &[]),
    spec(
        "quantity",
        Integer {
            min: Some(0),
            max: None,
        },
        &[],
    ),
    spec("country", Text, &[]),
    // error
    spec("error_code", Code, &[]),
    spec("error_type", Text, &[]),
    spec("error_message", Text, &[Error]),
    spec("endpoint", Text, &[Performance]),
    // user_behavior
    spec("action", Text, &[UserBehavior]),
    spec("page", Text, &[]),
    spec("session_id", Code, &[]),
    // performance
    spec("response_time", NON_NEGATIVE, &[Performance]),
    spec("db_query_time", NON_NEGATIVE, &[]),
    spec(
        "status_code",
        Integer {
            min: Some(100),
            max: Some(599),
        },
        &[],
    ),
    // fraud (detections made upstream)
    spec(
        "fraud_score",
        Number {
            min: Some(0.0),
            max: Some(100.0),
        },
        &[Fraud],
    ),
    spec("fraud_detected", Bool, &[]),
    spec("indicators", TextList, &[]),
];

const fn spec(name: &'static str, kind: FieldKind, required_by: &'static [LogType]) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required_by,
    }
}

/// Fields the pipeline reads, beyond checking them. Decided once from the name, so the hot
/// path branches on a small integer instead of comparing strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    LogType,
    Timestamp,
    AtTimestamp,
    EventId,
    Ip,
    UserId,
    Amount,
    Status,
    Action,
    Country,
    Level,
    Service,
    Message,
    ErrorMessage,
    Other,
}

fn role_of(name: &str) -> Role {
    match name {
        "log_type" => Role::LogType,
        "timestamp" => Role::Timestamp,
        "@timestamp" => Role::AtTimestamp,
        "event_id" => Role::EventId,
        "ip" => Role::Ip,
        "user_id" => Role::UserId,
        "amount" => Role::Amount,
        "status" => Role::Status,
        "action" => Role::Action,
        "country" => Role::Country,
        "level" => Role::Level,
        "service" => Role::Service,
        "message" => Role::Message,
        "error_message" => Role::ErrorMessage,
        _ => Role::Other,
    }
}

/// A known field as found by [`lookup`]: its position in [`FIELDS`] (< 64, so a `u64` can
/// record which are present), its spec and its role.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    pub index: usize,
    pub spec: &'static FieldSpec,
    pub role: Role,
}

const SLOTS: usize = 128;

/// Open-addressing table over [`FIELDS`]: one hash of a few bytes and usually one comparison
/// per lookup, which matters since every field of every record is looked up.
static INDEX: LazyLock<[Option<Known>; SLOTS]> = LazyLock::new(|| {
    assert!(FIELDS.len() < 64 && FIELDS.len() < SLOTS / 2);
    let mut slots = [None; SLOTS];
    for (index, spec) in FIELDS.iter().enumerate() {
        let mut slot = slot_of(spec.name.as_bytes());
        while slots[slot].is_some() {
            slot = (slot + 1) % SLOTS;
        }
        slots[slot] = Some(Known {
            index,
            spec,
            role: role_of(spec.name),
        });
    }
    slots
});

fn slot_of(name: &[u8]) -> usize {
    let (Some(first), Some(last)) = (name.first(), name.last()) else {
        return 0;
    };
    let middle = name[name.len() / 2];
    ((name.len() * 31)
        ^ (usize::from(*first) * 131)
        ^ (usize::from(*last) * 7)
        ^ (usize::from(middle) * 17))
        % SLOTS
}

/// The fields each log type requires, indexed like [`LogType::ALL`].
static REQUIRED: LazyLock<[Vec<Known>; 5]> = LazyLock::new(|| {
    LogType::ALL.map(|t| {
        FIELDS
            .iter()
            .filter(|f| f.required_by.contains(&t))
            .filter_map(|f| lookup(f.name))
            .collect()
    })
});

/// The known field named `name`, if it is one.
pub fn lookup(name: &str) -> Option<Known> {
    let mut slot = slot_of(name.as_bytes());
    loop {
        match INDEX[slot] {
            None => return None,
            Some(known) if known.spec.name == name => return Some(known),
            Some(_) => slot = (slot + 1) % SLOTS,
        }
    }
}

/// The spec of a known field, if it is one.
pub fn field(name: &str) -> Option<&'static FieldSpec> {
    lookup(name).map(|k| k.spec)
}

/// The fields `log_type` requires.
pub fn required(log_type: LogType) -> &'static [Known] {
    let index = LogType::ALL
        .iter()
        .position(|t| *t == log_type)
        .unwrap_or_default();
    &REQUIRED[index]
}

/// Fields Sluice writes itself; a producer sending them would be overwritten, so they are refused.
pub const RESERVED: &[&str] = &["geo", "fraud", "ingest", "_id"];

/// Whether a top-level key is reserved, or a dotted path into a reserved object (`geo.city_name`
/// would land in Sluice's own `geo` in Elasticsearch, which reads dots as paths).
pub fn is_reserved(key: &str) -> bool {
    // Every field of every record is asked; most names start with a letter no reserved one has.
    if !matches!(key.as_bytes().first(), Some(b'g' | b'f' | b'i' | b'_')) {
        return false;
    }
    let head = key.split('.').next().unwrap_or(key);
    RESERVED.contains(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_name_and_path_into_one_is_reserved() {
        for name in RESERVED {
            assert!(is_reserved(name), "{name}");
            assert!(is_reserved(&format!("{name}.x")), "{name}.x");
            assert!(!is_reserved(&format!("{name}x")), "{name}x");
        }
        assert!(!is_reserved("message"));
    }

    #[test]
    fn every_log_type_requires_log_type() {
        let spec = field("log_type").expect("log_type is known");
        assert_eq!(spec.required_by.len(), LogType::ALL.len());
    }

    #[test]
    fn field_names_are_unique() {
        let mut names: Vec<_> = FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn every_field_is_found_by_name() {
        for spec in FIELDS {
            assert_eq!(field(spec.name).map(|f| f.name), Some(spec.name));
        }
    }

    #[test]
    fn required_lists_match_the_table() {
        let names: Vec<_> = required(LogType::Transaction)
            .iter()
            .map(|k| k.spec.name)
            .collect();
        assert_eq!(names, ["log_type", "user_id", "transaction_id", "amount"]);
    }

    #[test]
    fn unknown_field_has_no_spec() {
        for name in ["coupon_code", "", "x", "log_typ", "log_type_", "LOG_TYPE"] {
            assert!(field(name).is_none(), "{name}");
        }
    }

    #[test]
    fn roles_are_assigned_by_name() {
        assert_eq!(lookup("amount").map(|k| k.role), Some(Role::Amount));
        assert_eq!(lookup("quantity").map(|k| k.role), Some(Role::Other));
    }
}
