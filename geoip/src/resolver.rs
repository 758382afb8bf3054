//! The lookup path the processor uses: an optional database, a bounded cache in front of it, and
//! a cheap check for a replaced file so a database update needs no restart.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;

use crate::{GeoDatabase, GeoIpError, GeoRecord};

/// How often the database file is checked for replacement.
const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(30);

/// The answer for one IP.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// No database is loaded.
    NoDatabase,
    /// Private, loopback, link-local or otherwise non-public: no location to find.
    NotPublic,
    /// A public IP the database does not know.
    Unknown,
    Found(Arc<GeoRecord>),
}

/// Counts of one batch of lookups, for the GeoIP metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupCounts {
    pub found: usize,
    pub not_found: usize,
    pub cached: usize,
}

pub struct GeoResolver {
    /// Shared between resolvers of one process (see [`GeoResolver::sharing`]): a database is tens
    /// of megabytes.
    database: Option<Arc<GeoDatabase>>,
    cache: LruCache<IpAddr, Option<Arc<GeoRecord>>>,
    counts: LookupCounts,
    watched: Option<(PathBuf, Option<SystemTime>)>,
    next_check: Instant,
}

impl GeoResolver {
    /// A resolver over `path`'s database. A missing path means running without GeoIP.
    pub fn open(path: Option<PathBuf>, cache_size: usize) -> Result<GeoResolver, GeoIpError> {
        let database = path
            .as_deref()
            .map(GeoDatabase::open)
            .transpose()?
            .map(Arc::new);
        let watched = path.map(|p| {
            let modified = modified(&p);
            (p, modified)
        });
        Ok(GeoResolver {
            database,
            cache: LruCache::new(NonZeroUsize::new(cache_size).unwrap_or(NonZeroUsize::MIN)),
            counts: LookupCounts::default(),
            watched,
            next_check: Instant::now() + RELOAD_CHECK_EVERY,
        })
    }

    pub fn without_database() -> GeoResolver {
        GeoResolver {
            database: None,
            cache: LruCache::new(NonZeroUsize::MIN),
            counts: LookupCounts::default(),
            watched: None,
            next_check: Instant::now(),
        }
    }

    pub fn database(&self) -> Option<&GeoDatabase> {
        self.database.as_deref()
    }

    /// Another resolver over the same loaded database, with its own cache and its own check for
    /// a replaced file (a reload there loads its own copy).
    pub fn sharing(&self, cache_size: usize) -> GeoResolver {
        GeoResolver {
            database: self.database.clone(),
            cache: LruCache::new(NonZeroUsize::new(cache_size.max(1)).unwrap_or(NonZeroUsize::MIN)),
            counts: LookupCounts::default(),
            watched: self.watched.clone(),
            next_check: self.next_check,
        }
    }

    pub fn lookup(&mut self, ip: IpAddr) -> Lookup {
        let Some(database) = &self.database else {
            return Lookup::NoDatabase;
        };
        if !is_public(ip) {
            return Lookup::NotPublic;
        }
        let record = match self.cache.get(&ip) {
            Some(cached) => {
                self.counts.cached += 1;
                cached.clone()
            }
            None => {
                let found = database.lookup(ip).map(Arc::new);
                if found.is_some() {
                    self.counts.found += 1;
                } else {
                    self.counts.not_found += 1;
                }
                self.cache.put(ip, found.clone());
                found
            }
        };
        match record {
            Some(record) => Lookup::Found(record),
            None => Lookup::Unknown,
        }
    }

    /// Counts since the last call.
    pub fn take_counts(&mut self) -> LookupCounts {
        std::mem::take(&mut self.counts)
    }

    /// Reopens the database when its file changed (checked at most every 30 s). Returns the new
    /// database's description when it reloaded; a broken replacement keeps the old one.
    pub fn reload_if_changed(&mut self) -> Option<Result<String, GeoIpError>> {
        if Instant::now() < self.next_check {
            return None;
        }
        self.next_check = Instant::now() + RELOAD_CHECK_EVERY;
        self.reload_now_if_changed()
    }

    fn reload_now_if_changed(&mut self) -> Option<Result<String, GeoIpError>> {
        let (path, seen) = self.watched.as_mut()?;
        let current = modified(path);
        if current == *seen {
            return None;
        }
        *seen = current;
        Some(GeoDatabase::open(path).map(|database| {
            let description = format!("{} ({})", path.display(), database.database_type());
            self.database = Some(Arc::new(database));
            self.cache.clear();
            description
        }))
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether an address can have a public location.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
                || v4.is_multicast())
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
    }
}

#[cfg(test)]
mod tests;
