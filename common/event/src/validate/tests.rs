use super::*;

const NOW: i64 = 1_714_564_800_000;

/// The owned parts of a validated record, for assertions.
#[derive(Debug)]
struct Checked {
    log_type: LogType,
    event_time_ms: i64,
    user_id: Option<String>,
    amount: Option<f64>,
    ip: Option<std::net::IpAddr>,
}

fn check(json: &str) -> Result<Checked, Vec<FieldIssue>> {
    let limits = Limits::default();
    let mut scratch = Vec::new();
    let parsed = parse_record(json.as_bytes(), &mut scratch, &limits).map_err(|i| vec![i])?;
    let event = validate(parsed.tape.as_value(), NOW, &limits)?;
    Ok(Checked {
        log_type: event.log_type(),
        event_time_ms: event.event_time_ms,
        user_id: event.user_id.map(|u| u.into_owned()),
        amount: event.amount,
        ip: event.ip,
    })
}

fn only_issue(json: &str) -> FieldIssue {
    let issues = check(json).expect_err("record should be refused");
    assert_eq!(issues.len(), 1, "expected one issue, got {issues:?}");
    issues.into_iter().next().expect("one issue")
}

const TX: &str = r#"{"log_type":"transaction","transaction_id":"t1","user_id":"u1","amount":12.5,"timestamp":"2024-05-01T12:00:00Z","ip":"81.2.69.142","country":"GB"}"#;

#[test]
fn valid_transaction_is_typed() {
    let event = check(TX).expect("valid");
    assert_eq!(event.log_type, LogType::Transaction);
    assert_eq!(event.event_time_ms, NOW);
    assert_eq!(event.user_id.as_deref(), Some("u1"));
    assert_eq!(event.amount, Some(12.5));
    assert_eq!(event.ip, Some("81.2.69.142".parse().expect("ip")));
}

#[test]
fn unknown_fields_are_allowed() {
    let json = TX.replace("\"amount\"", "\"coupon\":\"SPRING\",\"amount\"");
    assert!(check(&json).is_ok());
}

#[test]
fn missing_timestamp_takes_receive_time() {
    let event = check(r#"{"log_type":"error","error_message":"boom"}"#).expect("valid");
    assert_eq!(event.event_time_ms, NOW);
}

#[test]
fn epoch_ms_timestamp_is_accepted() {
    let event = check(r#"{"log_type":"error","error_message":"x","timestamp":1714564700000}"#)
        .expect("valid");
    assert_eq!(event.event_time_ms, 1_714_564_700_000);
}

#[test]
fn transaction_without_amount_is_missing_field() {
    let issue = only_issue(&TX.replace("\"amount\":12.5,", ""));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("amount", RejectCode::MissingField)
    );
}

#[test]
fn each_log_type_has_its_required_fields() {
    let cases = [
        (r#"{"log_type":"error"}"#, "error_message"),
        (r#"{"log_type":"user_behavior","user_id":"u"}"#, "action"),
        (
            r#"{"log_type":"performance","endpoint":"/x"}"#,
            "response_time",
        ),
        (
            r#"{"log_type":"fraud","transaction_id":"t"}"#,
            "fraud_score",
        ),
    ];
    for (json, field) in cases {
        let issue = only_issue(json);
        assert_eq!(
            (issue.field.as_str(), issue.code),
            (field, RejectCode::MissingField)
        );
    }
}

#[test]
fn blank_required_text_counts_as_missing() {
    let issue = only_issue(&TX.replace(r#""transaction_id":"t1""#, r#""transaction_id":"  ""#));
    assert_eq!(issue.code, RejectCode::MissingField);
}

#[test]
fn wrong_type_names_field_and_types() {
    let issue = only_issue(&TX.replace("12.5", "\"12.5\""));
    assert_eq!(issue.field, "amount");
    assert_eq!(issue.code, RejectCode::WrongType);
    assert_eq!(issue.reason, "expected a number, got text");
}

#[test]
fn negative_amount_is_invalid() {
    let issue = only_issue(&TX.replace("12.5", "-3"));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("amount", RejectCode::InvalidValue)
    );
}

#[test]
fn status_code_out_of_range_is_invalid() {
    let issue = only_issue(
        r#"{"log_type":"performance","endpoint":"/x","response_time":3,"status_code":999}"#,
    );
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("status_code", RejectCode::InvalidValue)
    );
}

#[test]
fn unknown_log_type_is_refused() {
    let issue = only_issue(r#"{"log_type":"audit"}"#);
    assert_eq!(issue.code, RejectCode::UnknownLogType);
    assert!(issue.reason.contains("audit"));
}

#[test]
fn missing_log_type_is_refused() {
    let issue = only_issue(r#"{"message":"hi"}"#);
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("log_type", RejectCode::MissingField)
    );
}

#[test]
fn unparseable_ip_is_refused() {
    let issue = only_issue(&TX.replace("81.2.69.142", "999.1.1.1"));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("ip", RejectCode::InvalidIp)
    );
}

#[test]
fn ipv6_is_accepted() {
    assert!(check(&TX.replace("81.2.69.142", "2001:db8::1")).is_ok());
}

#[test]
fn unparseable_timestamp_is_refused() {
    let issue = only_issue(&TX.replace("2024-05-01T12:00:00Z", "last tuesday"));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("timestamp", RejectCode::InvalidTimestamp)
    );
}

#[test]
fn far_future_timestamp_is_refused() {
    let issue = only_issue(&TX.replace("2024-05-01T12:00:00Z", "2024-05-03T12:00:00Z"));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("timestamp", RejectCode::FutureTimestamp)
    );
}

#[test]
fn slightly_future_timestamp_is_accepted() {
    assert!(check(&TX.replace("2024-05-01T12:00:00Z", "2024-05-01T12:05:00Z")).is_ok());
}

#[test]
fn oversized_field_is_refused() {
    let big = "x".repeat(Limits::default().max_field_bytes + 1);
    let issue = only_issue(&TX.replace("\"GB\"", &format!("\"{big}\"")));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("country", RejectCode::Oversized)
    );
}

#[test]
fn oversized_record_is_refused_before_parsing() {
    let limits = Limits {
        max_record_bytes: 100,
        ..Limits::default()
    };
    let bytes = TX
        .replace("\"GB\"", &format!("\"{}\"", "y".repeat(200)))
        .into_bytes();
    let issue = parse_record(&bytes, &mut Vec::new(), &limits).expect_err("too big");
    assert_eq!(issue.code, RejectCode::Oversized);
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let json = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let issue = only_issue(&json);
    assert_eq!(issue.code, RejectCode::TooDeep);
}

#[test]
fn opening_brackets_are_counted_past_a_lane_of_255() {
    for count in [0, 1, 254, 255, 256, 511, 1_000] {
        let bytes: Vec<u8> = "[{a".bytes().cycle().take(count * 3).collect();
        let plain = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
        assert_eq!(count_opening(&bytes), plain, "{count}");
    }
}

#[test]
fn brackets_inside_strings_do_not_count_as_depth() {
    assert_eq!(nesting_depth(br#"{"a":"[[[[\"[["}"#), 1);
}

#[test]
fn malformed_json_and_non_objects_are_refused() {
    assert_eq!(
        only_issue(r#"{"log_type": "#).code,
        RejectCode::MalformedJson
    );
    assert_eq!(only_issue("[1,2]").code, RejectCode::NotAnObject);
    assert_eq!(only_issue("42").code, RejectCode::NotAnObject);
}

#[test]
fn reserved_fields_are_refused() {
    let issue = only_issue(&TX.replace("\"amount\"", "\"geo\":{},\"amount\""));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("geo", RejectCode::ReservedField)
    );
}

#[test]
fn integer_user_id_is_accepted_as_text() {
    let event = check(&TX.replace("\"u1\"", "42")).expect("valid");
    assert_eq!(event.user_id.as_deref(), Some("42"));
}

#[test]
fn several_issues_are_all_reported() {
    let issues =
        check(r#"{"log_type":"transaction","amount":-1,"ip":"nope"}"#).expect_err("invalid");
    let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
    for field in ["amount", "ip", "transaction_id", "user_id"] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
}

#[test]
fn indicators_must_be_text_list() {
    let issue = only_issue(
        r#"{"log_type":"fraud","transaction_id":"t","fraud_score":80,"indicators":[1]}"#,
    );
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("indicators", RejectCode::WrongType)
    );
}

const ERROR: &str = r#"{"log_type":"error","error_message":"x""#;

/// `{"log_type":"error","error_message":"x", <rest>}`
fn error_with(rest: &str) -> String {
    format!("{ERROR},{rest}}}")
}

#[test]
fn a_lone_surrogate_is_read_as_the_replacement_character() {
    let limits = Limits::default();
    let mut scratch = Vec::new();
    let original = error_with(r#""n":"a\ud800b","m":"\ud83d\ude00""#);
    let parsed = parse_record(original.as_bytes(), &mut scratch, &limits).expect("parses");
    assert_eq!(parsed.repaired, 1);
    let value = parsed.tape.as_value();
    assert_eq!(value.get_str("n"), Some("a\u{fffd}b"));
    assert_eq!(value.get_str("m"), Some("😀"), "a pair is a character");
    validate(value, NOW, &limits).expect("valid");
}

#[test]
fn integers_beyond_64_bits_are_kept_as_numbers() {
    check(&error_with(
        r#""order_number":123456789012345678901234567890"#,
    ))
    .expect("valid");
    check(&error_with(r#""n":-9223372036854775809"#)).expect("valid");
    // A known integer field beyond 64 bits is an integer out of range, not of the wrong type.
    let issue = only_issue(
        r#"{"log_type":"performance","endpoint":"/","response_time":1,"status_code":1e30}"#,
    );
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("status_code", RejectCode::InvalidValue)
    );
}

#[test]
fn a_float_beyond_a_double_is_out_of_range_with_its_path_not_malformed() {
    let issue = only_issue(&error_with(r#""cart":{"items":[{"price":1e400}]}"#));
    assert_eq!(issue.code, RejectCode::NumberOutOfRange);
    assert_eq!(issue.field, "cart.items[0].price");
}

#[test]
fn a_field_twice_in_one_object_is_refused_at_any_level() {
    let issue = only_issue(&error_with(r#""a":1,"b":2,"a":3"#));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("a", RejectCode::DuplicateField)
    );
    let nested = only_issue(&error_with(r#""cart":[{"sku":1},{"sku":2,"sku":3}]"#));
    assert_eq!(
        (nested.field.as_str(), nested.code),
        ("cart[1].sku", RejectCode::DuplicateField)
    );
    // Many keys take the set path.
    let keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    let issue = only_issue(&error_with(&format!("{},\"k7\":0", keys.join(","))));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("k7", RejectCode::DuplicateField)
    );
    check(&error_with(r#""a":{"x":1},"b":{"x":1}"#)).expect("same name in two objects");
    // Names alike in length, first bytes and last byte are compared whole.
    check(&error_with(r#""abcdef_1_z":1,"abcdef_2_z":2"#)).expect("two names");
    let issue = only_issue(&error_with(r#""abcdef_1_z":1,"abcdef_1_z":2"#));
    assert_eq!(issue.code, RejectCode::DuplicateField);
}

#[test]
fn names_elasticsearch_cannot_map_are_refused() {
    for (rest, field) in [
        (r#""":1"#, r#""""#),
        (r#""  ":1"#, "  "),
        (r#"".a":1"#, ".a"),
        (r#""a.":1"#, "a."),
        (r#""a..b":1"#, "a..b"),
        (r#""_source":1"#, "_source"),
        (r#""o":{"":1}"#, r#"o."""#),
    ] {
        let issue = only_issue(&error_with(rest));
        assert_eq!(
            (issue.field.as_str(), issue.code),
            (field, RejectCode::InvalidFieldName),
            "{rest}"
        );
    }
    check(&error_with(r#""a.b":1,"o":{"_source":1},"_mine":2"#))
        .expect("dotted paths, nested and other underscore names are fine");
}

/// serde_json (raw_value) reads `{"$serde_json::private::RawValue":"5"}` as the number 5, so
/// a record or nested object with that first name would be one thing at ingest and another in
/// every stage that reads documents with serde_json. Found by the CSV fuzz target.
#[test]
fn serde_json_private_token_names_are_refused() {
    let token = r#""$serde_json::private::RawValue""#;
    let smuggled: serde_json::Value =
        serde_json::from_str(&format!(r#"{{"o":{{{token}:"5"}}}}"#)).expect("JSON");
    assert_eq!(
        smuggled["o"],
        serde_json::json!(5),
        "the quirk guarded against"
    );
    for (rest, field) in [
        (format!("{token}:\"5\""), "$serde_json::private::RawValue"),
        (
            format!(r#""o":{{{token}:"5"}}"#),
            "o.$serde_json::private::RawValue",
        ),
        (
            r#""$serde_json::private::Number":"1""#.to_owned(),
            "$serde_json::private::Number",
        ),
    ] {
        let issue = only_issue(&error_with(&rest));
        assert_eq!(
            (issue.field.as_str(), issue.code),
            (field, RejectCode::InvalidFieldName),
            "{rest}"
        );
    }
    check(&error_with(r#""$price":1,"serde_json":2"#)).expect("other dollar names are fine");
}

#[test]
fn dotted_paths_into_reserved_objects_are_refused() {
    let issue = only_issue(&error_with(r#""geo.city_name":"x""#));
    assert_eq!(issue.code, RejectCode::ReservedField);
}

#[test]
fn objects_nest_at_most_the_mapping_depth_and_records_hold_at_most_max_fields() {
    let nested = |depth: usize| format!("{}1{}", "{\"o\":".repeat(depth), "}".repeat(depth));
    // The record is depth 1: 19 objects inside it reach depth 20.
    check(&error_with(&format!("\"n\":{}", nested(19)))).expect("20 deep");
    let issue = only_issue(&error_with(&format!("\"n\":{}", nested(20))));
    assert_eq!(issue.code, RejectCode::TooDeep);
    // Arrays do not count towards the depth of objects.
    check(&error_with(r#""a":[[[[[[1]]]]]]"#)).expect("arrays");
    let many: Vec<String> = (0..1_000).map(|i| format!("\"f{i}\":{i}")).collect();
    let issue = only_issue(&error_with(&many.join(",")));
    assert_eq!(issue.code, RejectCode::Oversized);
    assert!(issue.reason.contains("max_fields"), "{}", issue.reason);
}

#[test]
fn a_path_that_is_both_an_object_and_a_value_is_refused() {
    for (rest, path) in [
        (r#""a":1,"a.b":2"#, "a"),
        (r#""a.b":2,"a":1"#, "a"),
        (r#""a":{"b":1},"a.b.c":2"#, "a.b"),
        (r#""x":[{"y":1},{"y":{"z":2}}]"#, "x.y"),
        (r#""x":[{"y":1},3]"#, "x"),
    ] {
        let issue = only_issue(&error_with(rest));
        assert_eq!(
            (issue.field.as_str(), issue.code),
            (path, RejectCode::ConflictingTypes),
            "{rest}"
        );
    }
    let issue = only_issue(&error_with(r#""user_id.first":"a""#));
    assert_eq!(
        (issue.field.as_str(), issue.code),
        ("user_id.first", RejectCode::ConflictingTypes)
    );
    check(&error_with(
        r#""a.b":1,"a":{"c":2},"x":[{"y":1},{"y":2}],"n":[null,{"k":1}]"#,
    ))
    .expect("paths that agree");
}

/// simd-json took `1<NUL>2` for two numbers; the record is not JSON (found by the agreement
/// property test).
#[test]
fn a_raw_nul_byte_is_malformed_even_where_simd_json_would_read_past_it() {
    let issue = only_issue("{\"log_type\":\"error\",\"error_message\":\"x\",\"n\":[1\u{0}2]}");
    assert_eq!(issue.code, RejectCode::MalformedJson);
    assert!(issue.reason.contains("NUL"), "{}", issue.reason);
}
