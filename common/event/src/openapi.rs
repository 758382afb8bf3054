//! The JSON Schema of a record, for the OpenAPI document, derived from [`FIELDS`]: the
//! table validation reads, so the document states exactly what validation enforces on types,
//! bounds and required fields. Unknown fields are allowed and kept, as validation keeps them.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::LogType;
use crate::schema::{FIELDS, FieldKind, FieldSpec};

/// A record as producers send it: one object per event, its `log_type` deciding which fields
/// it needs.
pub struct LogRecord;

impl PartialSchema for LogRecord {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "One event. Which fields are required depends on `log_type`; fields Sluice does not \
             know are kept as they come, bounded only in size.",
        ));
        for log_type in LogType::ALL {
            one_of = one_of.item(record_of(log_type));
        }
        one_of.into()
    }
}

impl ToSchema for LogRecord {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LogRecord")
    }
}

/// The schema of a record of `log_type` whose fields in `defaulted` may be left out (the
/// receiver fills them in).
pub fn record_schema(log_type: LogType, defaulted: &[&str]) -> Schema {
    record_with(log_type, defaulted)
}

fn record_of(log_type: LogType) -> Schema {
    record_with(log_type, &[])
}

fn record_with(log_type: LogType, defaulted: &[&str]) -> Schema {
    let mut object = ObjectBuilder::new()
        .title(Some(log_type.as_str()))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    for spec in FIELDS {
        let required = spec.required_by.contains(&log_type) && !defaulted.contains(&spec.name);
        let schema = if spec.name == "log_type" {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([log_type.as_str()]))
                .into()
        } else {
            field_schema(spec, !required)
        };
        object = object.property(spec.name, schema);
        if required {
            object = object.required(spec.name);
        }
    }
    object.into()
}

/// The schema of a known field. Optional fields may be null: validation takes a known field left
/// null as absent. (Null is a type of the field's own schema, not a `oneOf` around it, so
/// generators do not nest deeper than the field is.)
fn field_schema(spec: &FieldSpec, nullable: bool) -> Schema {
    let types = |kinds: &[Type]| {
        let mut types = kinds.to_vec();
        if nullable {
            types.push(Type::Null);
        }
        SchemaType::from_iter(types)
    };
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let one_of = |items: Vec<Schema>| {
        let mut one_of = OneOfBuilder::new();
        for item in items {
            one_of = one_of.item(item);
        }
        if nullable {
            one_of = one_of.item(ObjectBuilder::new().schema_type(Type::Null));
        }
        one_of
    };
    match spec.kind {
        FieldKind::Text => ObjectBuilder::new().schema_type(types(&[Type::String])).into(),
        FieldKind::Number { min, max } => ObjectBuilder::new()
            .schema_type(types(&[Type::Number]))
            .minimum(min)
            .maximum(max)
            .into(),
        FieldKind::Integer { min, max } => ObjectBuilder::new()
            .schema_type(types(&[Type::Integer]))
            .minimum(min.map(|n| n as f64))
            .maximum(max.map(|n| n as f64))
            .into(),
        FieldKind::Bool => ObjectBuilder::new().schema_type(types(&[Type::Boolean])).into(),
        FieldKind::Ip => one_of(vec![
            text()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv4)))
                .into(),
            text()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6)))
                .into(),
        ])
        .into(),
        FieldKind::Timestamp => one_of(vec![
            text()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .into(),
            ObjectBuilder::new().schema_type(Type::Integer).into(),
        ])
        .description(Some(
            "RFC 3339 text or epoch milliseconds, 1970 to 9999; at most \
             `ingest.limits.max_future_skew_ms` (a day by default) ahead of the time it is received",
        ))
        .into(),
        FieldKind::Code => ObjectBuilder::new()
            .schema_type(types(&[Type::String, Type::Integer]))
            .into(),
        FieldKind::TextList => ArrayBuilder::new()
            .schema_type(types(&[Type::Array]))
            .items(ObjectBuilder::new().schema_type(Type::String))
            .into(),
    }
}
