use super::*;
use crate::Schema;
use crate::testing::{KnownNetwork, write_flat_city, write_maxmind_city};

fn networks() -> Vec<KnownNetwork> {
    let mut anonymous = KnownNetwork::new(
        "203.0.113.0/24",
        "NL",
        "Netherlands",
        "Amsterdam",
        52.37,
        4.9,
    );
    anonymous.cidr = "185.220.100.0/22".into();
    anonymous.anonymous = true;
    vec![
        KnownNetwork::new(
            "81.2.69.0/24",
            "GB",
            "United Kingdom",
            "London",
            51.51,
            -0.13,
        ),
        KnownNetwork::new("126.0.0.0/10", "JP", "Japan", "Tokyo", 35.68, 139.69),
        anonymous,
    ]
}

fn resolver(
    write: fn(&std::path::Path, &[KnownNetwork]) -> Result<(), String>,
) -> (tempfile::TempDir, GeoResolver) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("city.mmdb");
    write(&path, &networks()).expect("mmdb written");
    let resolver = GeoResolver::open(Some(path), 100).expect("opens");
    (dir, resolver)
}

fn found(lookup: Lookup) -> Arc<GeoRecord> {
    match lookup {
        Lookup::Found(record) => record,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn maxmind_schema_is_detected_and_decoded() {
    let (_dir, mut geo) = resolver(write_maxmind_city);
    assert_eq!(
        geo.database().map(GeoDatabase::schema),
        Some(Schema::MaxMindCity)
    );
    let london = found(geo.lookup("81.2.69.142".parse().expect("ip")));
    assert_eq!(
        *london,
        GeoRecord {
            country_iso_code: Some("GB".into()),
            country_name: Some("United Kingdom".into()),
            region_name: Some("London Region".into()),
            city_name: Some("London".into()),
            location: Some((51.51, -0.13)),
            continent_code: Some("EU".into()),
            anonymous: false,
        }
    );
    assert!(found(geo.lookup("185.220.101.1".parse().expect("ip"))).anonymous);
}

#[test]
fn flat_schema_is_detected_and_completed_from_the_country_table() {
    let (_dir, mut geo) = resolver(write_flat_city);
    assert_eq!(
        geo.database().map(GeoDatabase::schema),
        Some(Schema::FlatCity)
    );
    let tokyo = found(geo.lookup("126.1.2.3".parse().expect("ip")));
    assert_eq!(tokyo.country_iso_code.as_deref(), Some("JP"));
    assert_eq!(tokyo.country_name.as_deref(), Some("Japan"));
    assert_eq!(tokyo.continent_code.as_deref(), Some("AS"));
    assert_eq!(tokyo.city_name.as_deref(), Some("Tokyo"));
    assert_eq!(tokyo.region_name.as_deref(), Some("Tokyo Region"));
    assert_eq!(tokyo.location, Some((35.68, 139.69)));
}

#[test]
fn unknown_private_and_missing_database_are_told_apart() {
    let (_dir, mut geo) = resolver(write_maxmind_city);
    assert_eq!(geo.lookup("8.8.8.8".parse().expect("ip")), Lookup::Unknown);
    assert_eq!(
        geo.lookup("10.1.2.3".parse().expect("ip")),
        Lookup::NotPublic
    );
    assert_eq!(geo.lookup("::1".parse().expect("ip")), Lookup::NotPublic);
    let mut none = GeoResolver::without_database();
    assert_eq!(
        none.lookup("81.2.69.142".parse().expect("ip")),
        Lookup::NoDatabase
    );
}

#[test]
fn repeated_lookups_come_from_the_cache() {
    let (_dir, mut geo) = resolver(write_maxmind_city);
    for _ in 0..3 {
        geo.lookup("81.2.69.142".parse().expect("ip"));
    }
    geo.lookup("8.8.8.8".parse().expect("ip"));
    assert_eq!(
        geo.take_counts(),
        LookupCounts {
            found: 1,
            not_found: 1,
            cached: 2
        }
    );
    assert_eq!(geo.take_counts(), LookupCounts::default());
}

#[test]
fn replaced_file_is_reloaded() {
    let (dir, mut geo) = resolver(write_maxmind_city);
    assert_eq!(geo.lookup("8.8.8.8".parse().expect("ip")), Lookup::Unknown);
    let path = dir.path().join("city.mmdb");
    let mut more = networks();
    more.push(KnownNetwork::new(
        "8.8.8.0/24",
        "US",
        "United States",
        "Mountain View",
        37.4,
        -122.1,
    ));
    std::thread::sleep(Duration::from_millis(20));
    write_flat_city(&path, &more).expect("rewritten");
    let reloaded = geo
        .reload_now_if_changed()
        .expect("change seen")
        .expect("reloads");
    assert!(reloaded.contains("city.mmdb"));
    let us = found(geo.lookup("8.8.8.8".parse().expect("ip")));
    assert_eq!(us.country_iso_code.as_deref(), Some("US"));
    assert!(geo.reload_now_if_changed().is_none());
}

#[test]
fn a_file_that_is_not_mmdb_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bogus.mmdb");
    std::fs::write(&path, b"not a database").expect("write");
    let err = GeoResolver::open(Some(path), 10).err().expect("refused");
    assert!(err.to_string().contains("bogus.mmdb"), "{err}");
}
