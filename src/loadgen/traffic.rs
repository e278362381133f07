//! Realistic e-commerce traffic: page views, impressions and clicks per ad profile, add-to-carts,
//! purchases with amounts, signups, checkout errors and costs, from a pool of users with sessions,
//! over web, mobile and api sources.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, rngs::SmallRng};
use uuid::Uuid;

/// The traffic shape over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// The same rate throughout.
    Steady,
    /// A Black Friday spike: ramps to 10x the rate with doubled checkout errors at the peak, and a
    /// checkout incident in the middle of it (errors at 6x, about 9 % of events: past the dashboard's
    /// default 5 % alert line).
    BlackFriday,
}

/// How hard the scenario pushes at a point of the run (0.0 = start, 1.0 = end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intensity {
    pub rate: f64,
    pub errors: f64,
}

impl Scenario {
    /// Steady is flat; Black Friday: baseline for 15 % of the run, a ramp to 10x until 25 %,
    /// the peak (checkout errors doubled) until 75 % with the incident (errors 6x) from 45 % to
    /// 60 %, a ramp down until 85 %, baseline after.
    pub fn intensity(self, progress: f64) -> Intensity {
        match self {
            Scenario::Steady => Intensity { rate: 1.0, errors: 1.0 },
            Scenario::BlackFriday => {
                let rate = match progress {
                    p if p < 0.15 => 1.0,
                    p if p < 0.25 => 1.0 + 9.0 * (p - 0.15) / 0.10,
                    p if p < 0.75 => 10.0,
                    p if p < 0.85 => 10.0 - 9.0 * (p - 0.75) / 0.10,
                    _ => 1.0,
                };
                let errors = match progress {
                    p if (0.45..0.60).contains(&p) => 6.0,
                    p if (0.25..0.75).contains(&p) => 2.0,
                    _ => 1.0,
                };
                Intensity { rate, errors }
            }
        }
    }
}

/// Writes events as JSON text straight into a bulk body: no intermediate values.
pub struct Generator {
    rng: SmallRng,
    users: u32,
    /// Tag put in every event's properties so a verifying run can count its own rows.
    run_tag: Option<String>,
}

const SOURCES: [&str; 3] = ["web", "web", "mobile"];
const PAGES: [&str; 6] = ["/", "/products", "/products/42", "/cart", "/checkout", "/search"];
const COST_CATEGORIES: [&str; 3] = ["infrastructure", "advertising", "support"];
const FEATURES: [&str; 3] = ["search", "checkout", "recommendations"];
const ERROR_CODES: [&str; 3] = ["PAYMENT_DECLINED", "TIMEOUT", "GATEWAY_MISCONFIGURED"];

impl Generator {
    pub fn new(rng: SmallRng, users: u32, run_tag: Option<String>) -> Self {
        Self { rng, users: users.max(1), run_tag }
    }

    /// A bulk body of `count` events stamped `now`.
    pub fn bulk_body(&mut self, count: usize, now: DateTime<Utc>, intensity: Intensity) -> String {
        let ts = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut body = String::with_capacity(count * 260 + 16);
        body.push_str(r#"{"events":["#);
        for i in 0..count {
            if i > 0 {
                body.push(',');
            }
            self.write_event(&mut body, &ts, intensity);
        }
        body.push_str("]}");
        body
    }

    fn write_event(&mut self, out: &mut String, ts: &str, intensity: Intensity) {
        let rng = &mut self.rng;
        let user = rng.random_range(1..=self.users);
        let source = if rng.random_bool(0.1) { "api" } else { SOURCES[rng.random_range(0..SOURCES.len())] };
        let session = user * 7 + (ts.as_bytes()[14] as u32 % 2); // ~30-minute sessions
        let roll: f64 = rng.random();
        let error_share = 0.015 * intensity.errors;
        let (event_type, properties) = match roll {
            r if r < error_share => {
                let code = ERROR_CODES[rng.random_range(0..ERROR_CODES.len())];
                ("error", format!(r#"{{"code":"{code}","page":"/checkout"}}"#))
            }
            r if r < error_share + 0.025 => {
                let amount = rng.random_range(499..=49_999) as f64 / 100.0;
                let profile = rng.random_range(1..=40);
                (
                    "purchase",
                    format!(r#"{{"amount":{amount:.2},"currency":"EUR","profile_id":"profile_{profile:02}"}}"#),
                )
            }
            r if r < error_share + 0.085 => ("add_to_cart", format!(r#"{{"sku":"sku_{}"}}"#, rng.random_range(1..500))),
            r if r < error_share + 0.095 => ("signup", r#"{"plan":"free"}"#.to_owned()),
            r if r < error_share + 0.105 => {
                let category = COST_CATEGORIES[rng.random_range(0..3)];
                let feature = FEATURES[rng.random_range(0..3)];
                let amount = rng.random_range(5..=2_000) as f64 / 100.0;
                ("cost", format!(r#"{{"category":"{category}","feature":"{feature}","amount":{amount:.2}}}"#))
            }
            r if r < error_share + 0.305 => {
                ("impression", format!(r#"{{"profile_id":"profile_{:02}"}}"#, rng.random_range(1..=40)))
            }
            r if r < error_share + 0.355 => {
                ("click", format!(r#"{{"profile_id":"profile_{:02}"}}"#, rng.random_range(1..=40)))
            }
            r if r < error_share + 0.435 => {
                ("feature_used", format!(r#"{{"feature":"{}"}}"#, FEATURES[rng.random_range(0..3)]))
            }
            _ => ("page_view", format!(r#"{{"path":"{}"}}"#, PAGES[rng.random_range(0..PAGES.len())])),
        };
        let event_id = Uuid::from_u128(rng.random::<u128>() & !(0xF << 76) | (0x4 << 76));
        let _ = write!(
            out,
            r#"{{"event_id":"{event_id}","event_type":"{event_type}","timestamp":"{ts}","user_id":"user_{user:06}","session_id":"sess_{session:08}","source":"{source}","properties":"#
        );
        match &self.run_tag {
            Some(tag) => {
                // Insert the tag as the object's first key.
                let rest = properties.strip_prefix('{').unwrap_or("}");
                let sep = if rest == "}" { "" } else { "," };
                let _ = write!(out, r#"{{"loadgen_run":"{tag}"{sep}{rest}"#);
            }
            None => out.push_str(&properties),
        }
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bodies_are_valid_bulk_requests() {
        let mut generator = Generator::new(SmallRng::seed_from_u64(1), 100, Some("abc".into()));
        let body = generator.bulk_body(200, Utc::now(), Intensity { rate: 1.0, errors: 1.0 });
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let events = parsed["events"].as_array().unwrap();
        assert_eq!(events.len(), 200);
        assert!(events.iter().all(|e| e["properties"]["loadgen_run"] == "abc"));
        assert!(events.iter().any(|e| e["event_type"] == "purchase" && e["properties"]["amount"].is_number()));
    }

    #[test]
    fn black_friday_peaks_at_ten_times_with_doubled_errors_and_an_incident() {
        assert_eq!(Scenario::BlackFriday.intensity(0.3), Intensity { rate: 10.0, errors: 2.0 });
        assert_eq!(Scenario::BlackFriday.intensity(0.5), Intensity { rate: 10.0, errors: 6.0 });
        assert_eq!(Scenario::BlackFriday.intensity(0.05).rate, 1.0);
    }
}
