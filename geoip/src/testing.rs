//! Small `.mmdb` files with known contents, in both schemas, for tests and benchmarks.

use std::path::Path;

use ipnet::IpNet;
use mmdb_writer::{Value, Writer};
use serde_json::json;

/// One network and where it is.
#[derive(Debug, Clone)]
pub struct KnownNetwork {
    pub cidr: String,
    pub iso: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    pub continent: String,
    pub anonymous: bool,
}

impl KnownNetwork {
    pub fn new(cidr: &str, iso: &str, country: &str, city: &str, lat: f64, lon: f64) -> Self {
        KnownNetwork {
            cidr: cidr.into(),
            iso: iso.into(),
            country: country.into(),
            region: format!("{city} Region"),
            city: city.into(),
            lat,
            lon,
            continent: crate::country(iso).map_or("", |(_, c)| c).into(),
            anonymous: false,
        }
    }
}

fn parse(cidr: &str) -> Result<IpNet, String> {
    cidr.parse().map_err(|e| format!("{cidr}: {e}"))
}

/// Writes a MaxMind GeoIP2 City-schema database.
pub fn write_maxmind_city(path: &Path, networks: &[KnownNetwork]) -> Result<(), String> {
    let mut writer = Writer::new("GeoLite2-City");
    for n in networks {
        let record = json!({
            "city": {"names": {"en": n.city}},
            "continent": {"code": n.continent},
            "country": {"iso_code": n.iso, "names": {"en": n.country}},
            "location": {"latitude": n.lat, "longitude": n.lon},
            "subdivisions": [{"names": {"en": n.region}}],
            "traits": {"is_anonymous_proxy": n.anonymous},
        });
        writer
            .insert(parse(&n.cidr)?, &record)
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(path, writer.to_bytes().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// Writes an ip-location-db flat City-schema database, coordinates as 32-bit floats like the
/// published files.
pub fn write_flat_city(path: &Path, networks: &[KnownNetwork]) -> Result<(), String> {
    let mut writer = Writer::new("city");
    for n in networks {
        let record = Value::map([
            ("country_code", Value::from(n.iso.as_str())),
            ("state1", Value::from(n.region.as_str())),
            ("state2", Value::from("")),
            ("city", Value::from(n.city.as_str())),
            ("postcode", Value::from("")),
            ("latitude", Value::Float(n.lat as f32)),
            ("longitude", Value::Float(n.lon as f32)),
            ("timezone", Value::from("")),
        ]);
        writer
            .insert_value(parse(&n.cidr)?, record)
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(path, writer.to_bytes().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// A MaxMind City database that knows the networks `sluice gen` draws its IPs from, so tests and
/// benchmarks over generated traffic see it located.
pub fn write_sample_city(path: &Path) -> Result<(), String> {
    let networks: Vec<KnownNetwork> = sluice_sample::COUNTRY_NETWORKS
        .iter()
        .map(|n| KnownNetwork::new(&n.cidr(), n.iso, n.country, n.city, n.lat, n.lon))
        .collect();
    write_maxmind_city(path, &networks)
}
