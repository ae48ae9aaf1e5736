//! `GET /metrics` on every replica, in Prometheus' text format (the `metrics` facade and
//! `metrics-exporter-prometheus`): store calls by operation and result
//! ([`crate::session::metered`]), session events, and request latency by route (recorded with
//! the access log line). HAProxy's own exporter is on its stats port (`/metrics` there).
use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Session lifecycle events: `event` is created, renewed, revoked or ended.
pub const SESSIONS: &str = "sessionlab_sessions_total";
/// Request latency: `method` (the standard ones, else `other`), `route` (the pattern, never the
/// raw path) and `status`: every label has a bounded set of values.
pub const REQUESTS: &str = "sessionlab_http_request_duration_seconds";

/// Seconds: from a tenth of a millisecond (an in-memory read) to a second (a store timing out).
const BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How often recorded latencies are folded into their buckets when no one scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide recorder, installed on first use.
///
/// The exporter keeps each latency it is given until upkeep folds it into its histogram's
/// buckets, which `render` does, and so only a scrape would. A replica no one scrapes would
/// keep every request's latency for ever: a thread runs the upkeep every few seconds instead.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("non-empty buckets")
                .install_recorder()
                .expect("the only metrics recorder of this process");
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .expect("a thread for the metrics' upkeep");
            handle
        })
        .clone()
}

/// A request method as a label value. Anyone can send any method (`FOO1`, `FOO2`, …); each new
/// label value is a new series kept for ever, so only the standard ones are named.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub async fn endpoint(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}

/// Counts a session lifecycle event.
pub fn session_event(event: &'static str) {
    metrics::counter!(SESSIONS, "event" => event).increment(1);
}

/// One line of Prometheus' text format: a metric name, its labels, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of a `/metrics` page. Comments and malformed lines are skipped: this reads the
/// pages this project serves (and HAProxy's), not arbitrary input.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                None => (series, Vec::new()),
            };
            Some(Sample { name: name.to_owned(), labels, value })
        })
        .collect()
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    // Label values here never contain `",`; splitting on it is enough.
    text.split("\",")
        .filter_map(|pair| {
            let (key, value) = pair.split_once("=\"")?;
            Some((key.trim().to_owned(), value.trim_end_matches('"').to_owned()))
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include every pair of `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| matching.iter().all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v)))
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_parses_into_samples_that_sum_by_label() {
        let text = "# TYPE x histogram\n\
                    sessionlab_store_operation_duration_seconds_count{op=\"load\",result=\"hit\"} 7\n\
                    sessionlab_store_operation_duration_seconds_count{op=\"load\",result=\"miss\"} 2\n\
                    sessionlab_store_operation_duration_seconds_count{op=\"save\",result=\"ok\"} 3\n\
                    up 1\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 4);
        let count = "sessionlab_store_operation_duration_seconds_count";
        assert_eq!(sum(&samples, count, &[("op", "load")]), 9.0);
        assert_eq!(sum(&samples, count, &[("op", "load"), ("result", "hit")]), 7.0);
        assert_eq!(sum(&samples, "up", &[]), 1.0);
    }
}
