//! One log line per request: request ID, replica, backend, method, route, status, latency.
//! Deliberately not the default tracing-actix-web span: that one records the query string, client
//! IP and user agent; this one records nothing a session could be stolen with.
use std::time::Instant;

use actix_web::{
    HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    web,
};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::startup::AppInfo;

pub struct AccessLog;

struct Started(Instant);

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
        let (replica, backend) = request
            .app_data::<web::Data<AppInfo>>()
            .map(|i| (i.replica.clone(), i.backend.as_str()))
            .unwrap_or_default();
        tracing::info_span!("request", request_id = %request_id, replica = %replica, backend = %backend)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let _entered = span.enter();
        match outcome {
            Ok(res) => {
                let req = res.request();
                let latency = req.extensions().get::<Started>().map_or(0.0, |s| s.0.elapsed().as_secs_f64());
                let latency_ms = latency * 1e3;
                let route = req.match_pattern().unwrap_or_else(|| "(unmatched)".into());
                let status = res.status().as_u16();
                metrics::histogram!(
                    crate::metrics::REQUESTS,
                    "method" => crate::metrics::method_label(req.method()),
                    "route" => route.clone(),
                    "status" => status.to_string()
                )
                .record(latency);
                // HAProxy checks every replica every second: a passing check is counted in the
                // metrics, not logged, or it buries what a person came to read (the admin token
                // the lab prints, the requests they made). A failing one is logged.
                let routine = matches!(route.as_str(), "/healthz" | "/readyz") && res.status().is_success();
                if routine {
                    tracing::debug!(method = %req.method(), route = %route, status, "health check");
                } else {
                    tracing::info!(
                        method = %req.method(),
                        route = %route,
                        status,
                        latency_ms = format!("{latency_ms:.2}"),
                        "request"
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "request failed before a response was made"),
        }
    }
}
