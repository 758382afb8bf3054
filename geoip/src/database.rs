//! One opened `.mmdb` file and the decoding of its records into [`GeoRecord`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader, WithinOptions};
use serde::Deserialize;
use thiserror::Error;

use crate::GeoRecord;

#[derive(Debug, Error)]
pub enum GeoIpError {
    #[error("GeoIP database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
    #[error(
        "GeoIP database {path} holds neither City schema (MaxMind GeoIP2/GeoLite2 City, or \
         ip-location-db flat city): its first record has {keys}"
    )]
    UnknownSchema { path: PathBuf, keys: String },
    #[error("GeoIP database {path} has no records")]
    Empty { path: PathBuf },
}

/// The two record layouts Sluice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// MaxMind GeoIP2 / GeoLite2 City (and DB-IP's MaxMind-compatible City Lite).
    MaxMindCity,
    /// ip-location-db `*-city-mmdb`: `country_code`, `state1`, `city`, `latitude`, `longitude`.
    FlatCity,
}

pub struct GeoDatabase {
    reader: Reader<Vec<u8>>,
    schema: Schema,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

impl<'a> Names<'a> {
    fn english(&self) -> Option<String> {
        self.names.get("en").map(|s| (*s).to_owned())
    }
}

#[derive(Deserialize)]
struct MaxMindCountry<'a> {
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
struct MaxMindCity<'a> {
    #[serde(borrow)]
    city: Option<Names<'a>>,
    #[serde(borrow)]
    country: Option<MaxMindCountry<'a>>,
    #[serde(borrow)]
    registered_country: Option<MaxMindCountry<'a>>,
    #[serde(borrow)]
    continent: Option<MaxMindContinent<'a>>,
    #[serde(borrow, default)]
    subdivisions: Vec<Names<'a>>,
    location: Option<MaxMindLocation>,
    traits: Option<MaxMindTraits>,
}

#[derive(Deserialize)]
struct MaxMindContinent<'a> {
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct MaxMindLocation {
    latitude: Option<Degrees>,
    longitude: Option<Degrees>,
}

/// A coordinate stored as a double (MaxMind) or a float (ip-location-db): the reader is strict
/// about the two, so accept either.
struct Degrees(f64);

impl<'de> Deserialize<'de> for Degrees {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Degrees;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a coordinate in degrees")
            }
            fn visit_f32<E>(self, v: f32) -> Result<Degrees, E> {
                // Through the shortest decimal form, so 51.5f32 reads back as 51.5, not 51.49999…
                Ok(Degrees(v.to_string().parse().unwrap_or(f64::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Degrees, E> {
                Ok(Degrees(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Degrees, E> {
                Ok(Degrees(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Degrees, E> {
                Ok(Degrees(v as f64))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize, Default)]
struct MaxMindTraits {
    #[serde(default)]
    is_anonymous_proxy: bool,
    #[serde(default)]
    is_anonymous: bool,
    #[serde(default)]
    is_anonymous_vpn: bool,
    #[serde(default)]
    is_tor_exit_node: bool,
}

#[derive(Deserialize)]
struct FlatCity<'a> {
    country_code: Option<&'a str>,
    state1: Option<&'a str>,
    city: Option<&'a str>,
    latitude: Option<Degrees>,
    longitude: Option<Degrees>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl GeoDatabase {
    pub fn open(path: &Path) -> Result<GeoDatabase, GeoIpError> {
        let reader = Reader::open_readfile(path).map_err(|source| GeoIpError::Open {
            path: path.to_owned(),
            source,
        })?;
        let schema = detect_schema(&reader, path)?;
        Ok(GeoDatabase { reader, schema })
    }

    pub fn schema(&self) -> Schema {
        self.schema
    }

    /// `database_type` from the file's metadata, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The record for `ip`, or `None` when the database does not know it. An IPv6 address in
    /// an IPv4-only database is simply unknown.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoRecord> {
        let result = self.reader.lookup(ip).ok()?;
        match self.schema {
            Schema::MaxMindCity => result
                .decode::<MaxMindCity<'_>>()
                .ok()
                .flatten()
                .map(from_maxmind),
            Schema::FlatCity => result
                .decode::<FlatCity<'_>>()
                .ok()
                .flatten()
                .map(from_flat),
        }
    }
}

fn from_maxmind(r: MaxMindCity<'_>) -> GeoRecord {
    let country = r.country.or(r.registered_country);
    let traits = r.traits.unwrap_or_default();
    GeoRecord {
        country_iso_code: country.as_ref().and_then(|c| non_empty(c.iso_code)),
        country_name: country
            .as_ref()
            .and_then(|c| c.names.get("en").map(|s| (*s).to_owned())),
        region_name: r.subdivisions.first().and_then(Names::english),
        city_name: r.city.as_ref().and_then(Names::english),
        location: r
            .location
            .and_then(|l| Some((l.latitude?.0, l.longitude?.0))),
        continent_code: r.continent.and_then(|c| non_empty(c.code)),
        anonymous: traits.is_anonymous_proxy
            || traits.is_anonymous
            || traits.is_anonymous_vpn
            || traits.is_tor_exit_node,
    }
}

fn from_flat(r: FlatCity<'_>) -> GeoRecord {
    let iso = non_empty(r.country_code).map(|c| c.to_ascii_uppercase());
    let known = iso.as_deref().and_then(crate::country);
    GeoRecord {
        country_name: known.map(|(name, _)| name.to_owned()),
        continent_code: known.map(|(_, continent)| continent.to_owned()),
        country_iso_code: iso,
        region_name: non_empty(r.state1),
        city_name: non_empty(r.city),
        location: r.latitude.zip(r.longitude).map(|(lat, lon)| (lat.0, lon.0)),
        anonymous: false,
    }
}

/// Decides the schema from the first record in the file: MaxMind City records nest the country
/// in a `country` map, flat ones carry `country_code` at the top.
fn detect_schema(reader: &Reader<Vec<u8>>, path: &Path) -> Result<Schema, GeoIpError> {
    let first = reader
        .networks(WithinOptions::default())
        .map_err(|source| GeoIpError::Open {
            path: path.to_owned(),
            source,
        })?
        .filter_map(Result::ok)
        .find_map(|lookup| {
            lookup
                .decode::<BTreeMap<String, serde::de::IgnoredAny>>()
                .ok()
                .flatten()
        })
        .ok_or_else(|| GeoIpError::Empty {
            path: path.to_owned(),
        })?;
    if first.contains_key("country_code") {
        Ok(Schema::FlatCity)
    } else if [
        "country",
        "registered_country",
        "city",
        "location",
        "continent",
    ]
    .iter()
    .any(|k| first.contains_key(*k))
    {
        Ok(Schema::MaxMindCity)
    } else {
        Err(GeoIpError::UnknownSchema {
            path: path.to_owned(),
            keys: first.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}
