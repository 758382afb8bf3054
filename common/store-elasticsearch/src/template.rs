//! The index template: `infra/elasticsearch/index-template.json`, the one file operators read and
//! edit, compiled in so the binary installs exactly what the repository ships. Only its index
//! pattern follows `index_prefix`. A test keeps it in step with the fields Sluice validates.

use serde_json::{Value, json};

const TEMPLATE: &str = include_str!("../../../infra/elasticsearch/index-template.json");

/// The template for indices `<index_prefix>-*`.
pub fn index_template(index_prefix: &str) -> Value {
    // The file is checked by the tests below; it cannot be malformed in a built binary.
    let mut template: Value =
        serde_json::from_str(TEMPLATE).expect("infra/elasticsearch/index-template.json is JSON");
    template["index_patterns"] = json!([format!("{index_prefix}-*")]);
    template
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::schema::{FIELDS, FieldKind};

    fn mapping_type<'a>(template: &'a Value, path: &str) -> Option<&'a str> {
        let mut node = &template["template"]["mappings"];
        for part in path.split('.') {
            node = &node["properties"][part];
        }
        node["type"].as_str()
    }

    #[test]
    fn pattern_follows_the_prefix() {
        assert_eq!(index_template("shop")["index_patterns"], json!(["shop-*"]));
    }

    /// A field typed differently from what validation lets through would send valid events to
    /// the dead-letter queue (or make a keyword of a number and break range queries).
    #[test]
    fn every_validated_field_is_mapped_to_a_type_that_accepts_it() {
        let template = index_template("sluice-logs");
        for field in FIELDS {
            let mapped = mapping_type(&template, field.name)
                .unwrap_or_else(|| panic!("{} is not in the index template", field.name));
            let fits: &[&str] = match field.kind {
                FieldKind::Text if matches!(field.name, "message" | "error_message") => &["text"],
                FieldKind::Text | FieldKind::Code | FieldKind::TextList => &["keyword"],
                FieldKind::Number { .. } => &["double", "scaled_float"],
                FieldKind::Integer { .. } => &["long", "integer"],
                FieldKind::Bool => &["boolean"],
                FieldKind::Ip => &["ip"],
                FieldKind::Timestamp => &["date"],
            };
            assert!(
                fits.contains(&mapped),
                "{} ({:?}) is mapped as {mapped}",
                field.name,
                field.kind
            );
        }
    }

    #[test]
    fn what_the_processor_adds_is_mapped() {
        let template = index_template("sluice-logs");
        for (path, expected) in [
            ("geo.location", "geo_point"),
            ("geo.country_iso_code", "keyword"),
            ("fraud.score", "double"),
            ("fraud.indicators", "keyword"),
            ("fraud.detected", "boolean"),
            ("ingest.id", "keyword"),
            ("ingest.received_at", "date"),
            ("ingest.source", "keyword"),
        ] {
            assert_eq!(mapping_type(&template, path), Some(expected), "{path}");
        }
        let level = &template["template"]["mappings"]["properties"]["level"];
        assert_eq!(
            level["normalizer"], "sluice_lowercase",
            "levels match in any case"
        );
    }

    /// Every field searches filter, sort and aggregate on is mapped with a type of its kind, so
    /// Elasticsearch answers what tantivy answers from its typed fast fields.
    #[test]
    fn every_store_field_is_mapped_as_its_kind() {
        use sluice_store::{Field, FieldKind};
        let template = index_template("sluice-logs");
        for field in Field::ALL {
            let mapped = mapping_type(&template, field.path());
            let fits = match field.kind() {
                // `ip` is an address type in Elasticsearch; it matches and counts as text does.
                FieldKind::Keyword if *field == Field::Ip => matches!(mapped, Some("ip")),
                FieldKind::Keyword => matches!(mapped, Some("keyword")),
                FieldKind::Double => matches!(mapped, Some("double")),
                FieldKind::Long => matches!(mapped, Some("long" | "integer")),
                FieldKind::Boolean => matches!(mapped, Some("boolean")),
            };
            assert!(fits, "{field} ({:?}) is mapped as {mapped:?}", field.kind());
        }
    }
}
