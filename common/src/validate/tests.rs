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
