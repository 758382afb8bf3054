//! Realistic sample e-commerce logs for `sluice gen`, the tests and the benchmarks.
//!
//! Deterministic for a given seed and end time. The traffic has the shape fraud and analytics
//! need: a few hundred returning customers with a home country and a usual basket, a product
//! catalogue, sessions that browse and sometimes buy, services that slow down and fail in bursts,
//! and planted fraud patterns, each labelled with `sample_pattern` so tests know the ground truth.

use std::collections::VecDeque;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use sluice_event::format_rfc3339_ms;

/// Public networks used for sample IPs, with where they are (so tests can build a GeoIP
/// database that agrees with the generator): code, country, city, lat, lon, network, prefix.
pub const COUNTRY_NETWORKS: &[CountryNetwork] = &[
    net(
        "US",
        "United States",
        "New York",
        40.71,
        -74.01,
        [12, 0, 0, 0],
        8,
    ),
    net(
        "GB",
        "United Kingdom",
        "London",
        51.51,
        -0.13,
        [81, 128, 0, 0],
        11,
    ),
    net("DE", "Germany", "Berlin", 52.52, 13.40, [91, 0, 0, 0], 10),
    net("FR", "France", "Paris", 48.86, 2.35, [86, 192, 0, 0], 11),
    net("JP", "Japan", "Tokyo", 35.68, 139.69, [126, 0, 0, 0], 10),
    net(
        "BR",
        "Brazil",
        "São Paulo",
        -23.55,
        -46.63,
        [179, 96, 0, 0],
        11,
    ),
    net("IN", "India", "Mumbai", 19.08, 72.88, [117, 192, 0, 0], 10),
    net(
        "AU",
        "Australia",
        "Sydney",
        -33.87,
        151.21,
        [1, 128, 0, 0],
        11,
    ),
    net(
        "CA",
        "Canada",
        "Toronto",
        43.65,
        -79.38,
        [142, 112, 0, 0],
        12,
    ),
    net("ES", "Spain", "Madrid", 40.42, -3.70, [88, 0, 0, 0], 11),
    net("NG", "Nigeria", "Lagos", 6.45, 3.39, [105, 112, 0, 0], 12),
    net("RU", "Russia", "Moscow", 55.76, 37.62, [95, 24, 0, 0], 13),
];

/// Countries customers live in, weighted; the last two only appear in fraud patterns.
const HOME_COUNTRIES: &[(&str, u32)] = &[
    ("US", 30),
    ("GB", 12),
    ("DE", 12),
    ("FR", 10),
    ("JP", 8),
    ("BR", 7),
    ("IN", 7),
    ("AU", 5),
    ("CA", 5),
    ("ES", 4),
];
const RISKY_COUNTRIES: &[&str] = &["NG", "RU"];

#[derive(Debug, Clone, Copy)]
pub struct CountryNetwork {
    pub iso: &'static str,
    pub country: &'static str,
    pub city: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub network: [u8; 4],
    pub prefix: u8,
}

const fn net(
    iso: &'static str,
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    network: [u8; 4],
    prefix: u8,
) -> CountryNetwork {
    CountryNetwork {
        iso,
        country,
        city,
        lat,
        lon,
        network,
        prefix,
    }
}

impl CountryNetwork {
    pub fn of(iso: &str) -> Option<&'static CountryNetwork> {
        COUNTRY_NETWORKS.iter().find(|c| c.iso == iso)
    }

    pub fn cidr(&self) -> String {
        let [a, b, c, d] = self.network;
        format!("{a}.{b}.{c}.{d}/{}", self.prefix)
    }

    fn random_ip(&self, rng: &mut impl Rng) -> String {
        let base = u32::from_be_bytes(self.network);
        let host_bits = 32 - u32::from(self.prefix);
        let offset = rng.random_range(1..(1u32 << host_bits) - 1);
        std::net::Ipv4Addr::from(base | offset).to_string()
    }
}

/// Product id, name, category and price.
type CatalogueItem = (&'static str, &'static str, &'static str, f64);

/// Most units of one item in an ordinary basket.
const MAX_UNITS: u32 = 5;

const CATALOGUE: &[CatalogueItem] = &[
    ("P-1001", "Wireless Earbuds", "electronics", 79.99),
    ("P-1002", "4K Monitor 27\"", "electronics", 329.00),
    ("P-1003", "Mechanical Keyboard", "electronics", 119.50),
    ("P-1004", "Laptop Pro 14", "electronics", 1899.00),
    ("P-1005", "Smartphone X", "electronics", 999.00),
    ("P-2001", "Running Shoes", "sports", 89.95),
    ("P-2002", "Yoga Mat", "sports", 24.99),
    ("P-2003", "Road Bike", "sports", 1249.00),
    ("P-3001", "Coffee Beans 1kg", "grocery", 18.40),
    ("P-3002", "Green Tea, 100 bags", "grocery", 7.99),
    ("P-4001", "Cotton T-Shirt", "fashion", 19.90),
    ("P-4002", "Denim Jacket", "fashion", 74.00),
    ("P-4003", "Leather Handbag", "fashion", 245.00),
    ("P-5001", "Espresso Machine", "home", 459.00),
    ("P-5002", "Scented Candle", "home", 14.50),
    ("P-5003", "Desk Lamp", "home", 39.99),
    ("P-6001", "Novel: The Long Sluice", "books", 12.99),
    ("P-6002", "Rust in Action", "books", 44.99),
    ("P-7001", "Gift Card 50", "gift_cards", 50.00),
    ("P-7002", "Gift Card 500", "gift_cards", 500.00),
];
/// The dearest item a planted amount buys at least one of (the cheapest when none).
fn item_for(amount: f64) -> CatalogueItem {
    *CATALOGUE
        .iter()
        .filter(|item| item.3 <= amount)
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .unwrap_or(cheapest_item())
}

fn cheapest_item() -> &'static CatalogueItem {
    CATALOGUE
        .iter()
        .min_by(|a, b| a.3.total_cmp(&b.3))
        .unwrap_or(&CATALOGUE[0])
}

const PAYMENT_METHODS: &[&str] = &[
    "credit_card",
    "paypal",
    "apple_pay",
    "bank_transfer",
    "gift_card",
];
const ENDPOINTS: &[(&str, &str, f64)] = &[
    ("/api/products", "catalog", 45.0),
    ("/api/search", "search", 120.0),
    ("/api/cart", "cart", 35.0),
    ("/api/checkout", "checkout", 260.0),
    ("/api/payments/authorize", "checkout", 420.0),
    ("/api/users/login", "auth", 80.0),
];
const ERRORS: &[(&str, &str, &str, &str)] = &[
    (
        "DB_TIMEOUT",
        "TimeoutError",
        "database query timed out after 5000 ms",
        "catalog",
    ),
    (
        "PAYMENT_GATEWAY_502",
        "UpstreamError",
        "payment gateway returned 502 Bad Gateway",
        "checkout",
    ),
    (
        "CACHE_MISS_STORM",
        "CapacityError",
        "cache cluster evicting under memory pressure",
        "search",
    ),
    (
        "AUTH_TOKEN_INVALID",
        "AuthenticationError",
        "token signature verification failed",
        "auth",
    ),
    (
        "STOCK_CONFLICT",
        "ConcurrencyError",
        "inventory reservation conflict, order retried",
        "cart",
    ),
    (
        "NULL_POINTER",
        "RuntimeError",
        "unexpected null in price calculation",
        "checkout",
    ),
];
const PAGES: &[&str] = &["/", "/search", "/product", "/cart", "/checkout", "/account"];

/// The fraud patterns the generator plants.
pub const PATTERNS: &[&str] = &[
    "rapid_transactions",
    "failed_attempts",
    "high_risk_mismatch",
    "impossible_travel",
    "amount_anomaly",
];

struct Customer {
    id: String,
    home: &'static CountryNetwork,
    ip: String,
    usual_amount: f64,
    payment_method: &'static str,
    /// Largest amount so far, so a planted anomaly really stands out from this customer's past.
    largest_amount: f64,
}

/// An endless, seeded stream of sample events; take as many as needed.
pub struct SampleGenerator {
    rng: ChaCha8Rng,
    customers: Vec<Customer>,
    pending: VecDeque<Value>,
    clock_ms: i64,
    step_ms: i64,
    seed: u64,
    emitted: u64,
    transactions: u64,
}

impl SampleGenerator {
    /// `count` events spread over the `span_ms` before `end_ms` (the last lands near `end_ms`).
    pub fn new(seed: u64, count: usize, end_ms: i64, span_ms: i64) -> SampleGenerator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let customer_count = (count / 40).clamp(50, 20_000);
        let total_weight: u32 = HOME_COUNTRIES.iter().map(|(_, w)| w).sum();
        let customers = (0..customer_count)
            .map(|i| {
                let mut pick = rng.random_range(0..total_weight);
                let iso = HOME_COUNTRIES
                    .iter()
                    .find(|(_, w)| {
                        let hit = pick < *w;
                        pick = pick.saturating_sub(*w);
                        hit
                    })
                    .map_or("US", |(iso, _)| iso);
                let home = CountryNetwork::of(iso).unwrap_or(&COUNTRY_NETWORKS[0]);
                Customer {
                    id: format!("user-{i:05}"),
                    home,
                    ip: home.random_ip(&mut rng),
                    usual_amount: round2(10.0 + rng.random::<f64>().powi(2) * 140.0),
                    payment_method: PAYMENT_METHODS
                        .choose(&mut rng)
                        .copied()
                        .unwrap_or("credit_card"),
                    largest_amount: 0.0,
                }
            })
            .collect();
        let step_ms = (span_ms / count.max(1) as i64).max(1);
        SampleGenerator {
            rng,
            customers,
            pending: VecDeque::new(),
            clock_ms: end_ms - span_ms,
            step_ms,
            seed,
            emitted: 0,
            transactions: 0,
        }
    }

    /// Returning customers are more likely than new ones: a skewed pick.
    fn pick_customer(&mut self) -> usize {
        let n = self.customers.len();
        let r: f64 = self.rng.random();
        ((r * r) * n as f64) as usize % n
    }

    fn base(&mut self, log_type: &str, at_ms: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "event_id".into(),
            json!(format!("evt-{:x}-{}", self.seed, self.emitted)),
        );
        m.insert("log_type".into(), json!(log_type));
        m.insert("timestamp".into(), json!(format_rfc3339_ms(at_ms)));
        self.emitted += 1;
        m
    }

    /// An ordinary purchase: a catalogue item, cheap ones more often (as in a shop's sales), one
    /// to a few units at its price, so revenue per product follows its price.
    fn basket(&mut self) -> (f64, CatalogueItem, u32) {
        let item = *CATALOGUE
            .choose_weighted(&mut self.rng, |item| 1.0 / item.3.sqrt())
            .unwrap_or(cheapest_item());
        let most = if item.3 < 50.0 { MAX_UNITS } else { 2 };
        let quantity = 1 + (self.rng.random::<f64>().powi(3) * f64::from(most)) as u32;
        (round2(item.3 * f64::from(quantity)), item, quantity)
    }

    fn transaction(
        &mut self,
        customer: usize,
        at_ms: i64,
        amount: Option<f64>,
        status: &str,
        ip: Option<String>,
    ) -> Value {
        let (amount, (product_id, name, category, _), quantity) = match amount {
            Some(amount) => {
                let item = item_for(amount);
                (amount, item, ((amount / item.3).round() as u32).max(1))
            }
            None => self.basket(),
        };
        self.transactions += 1;
        let transaction_id = format!("tx-{:x}-{}", self.seed, self.transactions);
        let c = &mut self.customers[customer];
        c.largest_amount = c.largest_amount.max(amount);
        let currency = match c.home.iso {
            "GB" => "GBP",
            "DE" | "FR" | "ES" => "EUR",
            "JP" => "JPY",
            _ => "USD",
        };
        let message = format!("payment {status} for order {transaction_id} ({name})");
        let fields = json!({
            "transaction_id": transaction_id,
            "user_id": c.id,
            "amount": amount,
            "currency": currency,
            "payment_method": c.payment_method,
            "status": status,
            "product_id": product_id,
            "product_name": name,
            "category": category,
            "quantity": quantity,
            "country": c.home.iso,
            "ip": ip.unwrap_or_else(|| c.ip.clone()),
            "service": "checkout",
            "level": if status == "completed" { "info" } else { "warning" },
            "message": message,
        });
        self.finish("transaction", at_ms, fields)
    }

    fn finish(&mut self, log_type: &str, at_ms: i64, fields: Value) -> Value {
        let mut m = self.base(log_type, at_ms);
        if let Value::Object(fields) = fields {
            m.extend(fields);
        }
        Value::Object(m)
    }

    fn labelled(mut event: Value, pattern: &str) -> Value {
        if let Value::Object(m) = &mut event {
            m.insert("sample_pattern".into(), json!(pattern));
        }
        event
    }

    fn ordinary(&mut self, at_ms: i64) -> Value {
        let roll: f64 = self.rng.random();
        let customer = self.pick_customer();
        if roll < 0.35 {
            let status = if self.rng.random::<f64>() < 0.93 {
                "completed"
            } else {
                "failed"
            };
            return self.transaction(customer, at_ms, None, status, None);
        }
        if roll < 0.65 {
            let actions = [
                "view",
                "view",
                "search",
                "add_to_cart",
                "checkout",
                "purchase",
                "login",
                "logout",
                "login_failed",
            ];
            let action = *actions.choose(&mut self.rng).unwrap_or(&"view");
            let page = *PAGES.choose(&mut self.rng).unwrap_or(&"/");
            let session = format!(
                "s-{:x}-{}",
                self.seed,
                self.rng.random_range(0..1_000_000u32)
            );
            let c = &self.customers[customer];
            let fields = json!({
                "user_id": c.id, "action": action, "page": page, "session_id": session,
                "ip": c.ip, "service": "web", "level": "info",
                "message": format!("{} {action} {page}", c.id),
            });
            return self.finish("user_behavior", at_ms, fields);
        }
        if roll < 0.85 {
            let (endpoint, service, typical) =
                *ENDPOINTS.choose(&mut self.rng).unwrap_or(&ENDPOINTS[0]);
            let slow = self.rng.random::<f64>() < 0.05;
            let factor = if slow {
                8.0 + self.rng.random::<f64>() * 10.0
            } else {
                0.5 + self.rng.random::<f64>()
            };
            let response_time = round2(typical * factor);
            let status_code = if self.rng.random::<f64>() < 0.03 {
                500
            } else {
                200
            };
            let fields = json!({
                "endpoint": endpoint, "response_time": response_time,
                "db_query_time": round2(response_time * (0.2 + self.rng.random::<f64>() * 0.5)),
                "status_code": status_code, "service": service,
                "level": if status_code >= 500 || slow { "warning" } else { "info" },
                "message": format!("{endpoint} answered {status_code} in {response_time} ms"),
            });
            return self.finish("performance", at_ms, fields);
        }
        if roll < 0.95 {
            return self.error(at_ms, None);
        }
        // A detection made by the shop's older, upstream fraud service.
        let score: f64 = round2(self.rng.random::<f64>() * 100.0);
        self.transactions += 1;
        let fields = json!({
            "transaction_id": format!("tx-{:x}-{}", self.seed, self.transactions),
            "user_id": self.customers[customer].id,
            "fraud_score": score, "fraud_detected": score >= 70.0,
            "indicators": if score >= 70.0 { json!(["velocity", "device_fingerprint"]) } else { json!([]) },
            "service": "fraud-detector", "level": if score >= 70.0 { "warning" } else { "info" },
            "message": format!("upstream fraud check scored {score}"),
        });
        self.finish("fraud", at_ms, fields)
    }

    fn error(&mut self, at_ms: i64, only: Option<usize>) -> Value {
        let index = only.unwrap_or_else(|| self.rng.random_range(0..ERRORS.len()));
        let (code, kind, text, service) = ERRORS[index];
        let level = if self.rng.random::<f64>() < 0.1 {
            "critical"
        } else {
            "error"
        };
        let endpoint = ENDPOINTS
            .iter()
            .find(|(_, s, _)| *s == service)
            .map_or("/api/products", |(e, _, _)| *e);
        let fields = json!({
            "error_code": code, "error_type": kind, "error_message": text,
            "endpoint": endpoint, "service": service, "level": level,
            "message": format!("{service}: {text}"),
        });
        self.finish("error", at_ms, fields)
    }

    /// Queues a planted fraud pattern (or an error burst) starting at `at_ms`.
    fn plant(&mut self, at_ms: i64) {
        let which = self.rng.random_range(0..PATTERNS.len() + 1);
        // Patterns end at `at_ms`, so no event lies ahead of the generator's clock.
        let span_ms = match PATTERNS.get(which).copied() {
            Some("rapid_transactions") => 35_000,
            Some("failed_attempts") => 200_000,
            Some("impossible_travel") => 15 * 60_000,
            Some("amount_anomaly") => 70 * 60_000,
            Some(_) => 0,
            None => 56_000,
        };
        let at_ms = at_ms - span_ms;
        let customer = self.pick_customer();
        let mut events = Vec::new();
        match PATTERNS.get(which).copied() {
            Some(pattern @ "rapid_transactions") => {
                for i in 0..6 {
                    let t = self.transaction(customer, at_ms + i * 7_000, None, "completed", None);
                    events.push(Self::labelled(t, pattern));
                }
            }
            Some(pattern @ "failed_attempts") => {
                for i in 0..4 {
                    let t = self.transaction(customer, at_ms + i * 40_000, None, "declined", None);
                    events.push(Self::labelled(t, pattern));
                }
                let t = self.transaction(customer, at_ms + 200_000, None, "completed", None);
                events.push(Self::labelled(t, pattern));
            }
            Some(pattern @ "high_risk_mismatch") => {
                let risky = *RISKY_COUNTRIES.choose(&mut self.rng).unwrap_or(&"NG");
                let ip = CountryNetwork::of(risky).map(|n| n.random_ip(&mut self.rng));
                let amount = round2(1500.0 + self.rng.random::<f64>() * 2500.0);
                let t = self.transaction(customer, at_ms, Some(amount), "completed", ip);
                events.push(Self::labelled(t, pattern));
            }
            Some(pattern @ "impossible_travel") => {
                let home = self.customers[customer].home;
                let far = COUNTRY_NETWORKS
                    .iter()
                    .filter(|n| !RISKY_COUNTRIES.contains(&n.iso))
                    .max_by(|a, b| {
                        let da = sluice_fraud::haversine_km((home.lat, home.lon), (a.lat, a.lon));
                        let db = sluice_fraud::haversine_km((home.lat, home.lon), (b.lat, b.lon));
                        da.total_cmp(&db)
                    })
                    .unwrap_or(home);
                let t = self.transaction(customer, at_ms, None, "completed", None);
                events.push(Self::labelled(t, pattern));
                let ip = Some(far.random_ip(&mut self.rng));
                let t = self.transaction(customer, at_ms + 15 * 60_000, None, "completed", ip);
                events.push(Self::labelled(t, pattern));
            }
            Some(pattern @ "amount_anomaly") => {
                for i in 0..6 {
                    let at = at_ms + i * 10 * 60_000;
                    events.push(self.transaction(customer, at, None, "completed", None));
                }
                let c = &self.customers[customer];
                let amount = round2((c.usual_amount * 20.0).max(c.largest_amount * 3.0));
                let t = self.transaction(
                    customer,
                    at_ms + 70 * 60_000,
                    Some(amount),
                    "completed",
                    None,
                );
                events.push(Self::labelled(t, pattern));
            }
            _ => {
                // An outage: one failure mode repeated by one service for about a minute.
                let index = self.rng.random_range(0..ERRORS.len());
                for i in 0..15 {
                    events.push(self.error(at_ms + i * 4_000, Some(index)));
                }
            }
        }
        self.pending.extend(events);
    }
}

impl Iterator for SampleGenerator {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if let Some(event) = self.pending.pop_front() {
            self.clock_ms += self.step_ms;
            return Some(event);
        }
        let at = self.clock_ms;
        self.clock_ms += self.step_ms;
        if self.emitted > 0 && self.rng.random::<f64>() < 1.0 / 150.0 {
            self.plant(at);
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
        }
        Some(self.ordinary(at))
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Columns of the CSV form, in order; cells of other fields are not written.
pub const CSV_COLUMNS: &[&str] = &[
    "event_id",
    "log_type",
    "timestamp",
    "level",
    "service",
    "message",
    "user_id",
    "ip",
    "transaction_id",
    "amount",
    "currency",
    "payment_method",
    "status",
    "product_id",
    "product_name",
    "category",
    "quantity",
    "country",
    "error_code",
    "error_type",
    "error_message",
    "endpoint",
    "action",
    "page",
    "session_id",
    "response_time",
    "db_query_time",
    "status_code",
    "fraud_score",
    "fraud_detected",
    "indicators",
    "sample_pattern",
];

/// One CSV line (with `\n`) for `event`, quoting where RFC 4180 says to. Arrays become
/// `;`-separated text, which CSV ingest turns back into arrays for array fields.
pub fn csv_row(event: &Value, out: &mut String) {
    for (i, column) in CSV_COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell = match event.get(column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            Some(other) => other.to_string(),
        };
        push_csv_cell(&cell, out);
    }
    out.push('\n');
}

pub fn csv_header() -> String {
    let mut line = CSV_COLUMNS.join(",");
    line.push('\n');
    line
}

fn push_csv_cell(cell: &str, out: &mut String) {
    if cell.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_event::validate::{Limits, parse_record, validate};

    const END: i64 = 1_714_564_800_000;

    fn sample(seed: u64, n: usize) -> Vec<Value> {
        SampleGenerator::new(seed, n, END, 86_400_000)
            .take(n)
            .collect()
    }

    #[test]
    fn same_seed_same_events() {
        assert_eq!(sample(7, 500), sample(7, 500));
        assert_ne!(sample(7, 50), sample(8, 50));
    }

    #[test]
    fn every_event_is_valid_and_all_types_and_patterns_occur() {
        let events = sample(1, 5_000);
        let limits = Limits::default();
        let mut types = std::collections::BTreeSet::new();
        let mut patterns = std::collections::BTreeSet::new();
        for event in &events {
            let bytes = serde_json::to_vec(event).expect("serializes");
            let mut scratch = Vec::new();
            let parsed = parse_record(&bytes, &mut scratch, &limits).expect("parses");
            let valid =
                validate(parsed.tape.as_value(), END, &limits).expect("generated events are valid");
            types.insert(valid.log_type().as_str());
            if let Some(p) = event.get("sample_pattern").and_then(Value::as_str) {
                patterns.insert(p.to_owned());
            }
        }
        assert_eq!(types.len(), 5, "{types:?}");
        assert_eq!(patterns.len(), PATTERNS.len(), "{patterns:?}");
    }

    #[test]
    fn customers_come_back() {
        let events = sample(3, 2_000);
        let mut per_user = std::collections::HashMap::new();
        for e in &events {
            if let Some(u) = e.get("user_id").and_then(Value::as_str) {
                *per_user.entry(u.to_owned()).or_insert(0) += 1;
            }
        }
        assert!(per_user.values().any(|&n| n >= 10), "no returning customer");
    }

    #[test]
    fn ordinary_purchases_are_paid_at_the_catalogue_price() {
        let mut revenue_by_product = std::collections::HashMap::<String, f64>::new();
        for event in sample(11, 20_000) {
            if event["log_type"] != "transaction" || event.get("sample_pattern").is_some() {
                continue;
            }
            let id = event["product_id"].as_str().expect("product id");
            let price = CATALOGUE
                .iter()
                .find(|item| item.0 == id)
                .expect("a catalogue item")
                .3;
            let units = event["quantity"].as_f64().expect("quantity");
            let amount = event["amount"].as_f64().expect("amount");
            assert!((amount - price * units).abs() < 0.005, "{event}");
            *revenue_by_product.entry(id.to_owned()).or_default() += amount;
        }
        let revenue = |id: &str| revenue_by_product.get(id).copied().unwrap_or(0.0);
        assert!(
            revenue("P-1004") > revenue("P-3002") * 5.0,
            "a laptop earns more than tea: {revenue_by_product:?}"
        );
    }

    #[test]
    fn timestamps_never_pass_the_end() {
        for event in sample(5, 1_000) {
            let ts = event["timestamp"].as_str().expect("timestamp");
            let ms = sluice_event::parse_timestamp(ts).expect("parses");
            assert!(ms <= END, "{ts}");
        }
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let mut out = String::new();
        push_csv_cell("a,\"b\"\nc", &mut out);
        assert_eq!(out, "\"a,\"\"b\"\"\nc\"");
    }
}
