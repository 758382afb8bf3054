//! GeoIP for Sluice: turns an IP into `geo.*` fields (country, region, city, location, continent).
//!
//! Reads MaxMind DB files of either schema in use: the MaxMind GeoIP2/GeoLite2 City schema
//! (nested `country.iso_code`, `city.names.en`, …) and the flat schema of the free
//! ip-location-db City databases (`country_code`, `state1`, `city`, `latitude`, `longitude`).
//! The schema is detected from the data itself, so a renamed file still works. Lookups go
//! through a bounded cache, and [`GeoResolver::reload_if_changed`] picks up a replaced file.

mod countries;
mod database;
mod resolver;
#[cfg(feature = "testing")]
pub mod testing;

pub use countries::country;
pub use database::{GeoDatabase, GeoIpError, Schema};
pub use resolver::{GeoResolver, Lookup, LookupCounts};

/// What a database knows about an IP, normalised over both schemas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoRecord {
    pub country_iso_code: Option<String>,
    pub country_name: Option<String>,
    pub region_name: Option<String>,
    pub city_name: Option<String>,
    /// `(lat, lon)` in degrees.
    pub location: Option<(f64, f64)>,
    pub continent_code: Option<String>,
    /// Anonymous proxy, VPN or Tor exit, where the database says so.
    pub anonymous: bool,
}
