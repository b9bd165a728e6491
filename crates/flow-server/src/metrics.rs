//! Prometheus metrics of a server process: the engine records through the `metrics` facade
//! (`flow_engine::metrics` lists the names), this process installs a Prometheus recorder and
//! renders it from our own routes, the exporter having no listener of its own. `flow serve`
//! serves `GET /metrics` on its API; a `flow worker` has no API, so it serves the same route
//! alone on FLOW_METRICS_BIND when that is set. The queue's figures (`flow_queue_*`), which
//! Redis keeps for the whole deployment, are read from the queue at scrape time and rendered by
//! `flow serve` only, so that scraping several processes does not count them twice.
//!
//! No login token: Prometheus cannot log in. The route is open (the API listens on loopback by
//! default), or, with METRICS_TOKEN set, wants `Authorization: Bearer <METRICS_TOKEN>`
//! (Prometheus's `authorization: {credentials: ...}` scrape setting).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_queue::{Histogram, Metrics, StateCounts};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// A per-flow or per-node series nobody updated for this long is dropped from the exposition,
/// so flows and nodes that were deleted or renamed do not stay forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often the recorder drains its histograms and drops idle series.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the Prometheus recorder: {0}")]
pub struct MetricsError(#[from] metrics_exporter_prometheus::BuildError);

/// What `/metrics` renders, and who may read it; cheap to clone.
#[derive(Clone)]
pub(crate) struct Exporter {
    handle: PrometheusHandle,
    token: Option<Arc<str>>,
}

/// The process's recorder: installed once (the facade has one global recorder), its handle
/// shared by every server started in the process.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

impl Exporter {
    /// Installs the recorder (once per process) and keeps it up to date until `shutdown`.
    pub(crate) fn install(
        token: Option<String>,
        shutdown: &CancellationToken,
    ) -> Result<Exporter, MetricsError> {
        let handle = match HANDLE.get() {
            Some(handle) => handle.clone(),
            None => {
                let handle = PrometheusBuilder::new()
                    .set_buckets(&flow_engine::metrics::DURATION_BUCKETS_S)?
                    // The gauges have no per-flow labels and must not vanish while idle.
                    .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM, Some(IDLE_TIMEOUT))
                    .install_recorder()?;
                flow_engine::metrics::describe();
                HANDLE.get_or_init(|| handle).clone()
            }
        };
        let upkeep = handle.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => upkeep.run_upkeep(),
                }
            }
        });
        Ok(Exporter { handle, token: token.map(Arc::from) })
    }

    /// Refuses a request without the METRICS_TOKEN, when one is set.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.token else { return Ok(()) };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("/metrics wants `Authorization: Bearer <METRICS_TOKEN>`"))
        }
    }

    /// The engine's metrics of this process, then `extra` (the queue's), as Prometheus text.
    pub(crate) fn render(&self, extra: &str) -> Response {
        let mut body = self.handle.render();
        body.push_str(extra);
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    }
}

/// Equal bytes, in a time that does not tell how many leading bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The queue's figures as Prometheus text, or `flow_queue_up 0` when Redis did not answer.
pub(crate) fn queue_exposition(metrics: Option<&Metrics>) -> String {
    let mut out = String::new();
    let up = u8::from(metrics.is_some());
    header(&mut out, "flow_queue_up", "gauge", "Whether the job queue (Redis) answered this scrape.");
    let _ = writeln!(out, "flow_queue_up {up}");
    let Some(m) = metrics else { return out };
    header(&mut out, "flow_queue_jobs", "gauge", "Jobs in the queue now, by state.");
    for (state, n) in state_counts(&m.counts) {
        let _ = writeln!(out, "flow_queue_jobs{{state=\"{state}\"}} {n}");
    }
    let counters = [
        ("flow_queue_enqueued_total", "Jobs enqueued.", m.enqueued),
        ("flow_queue_deliveries_total", "Deliveries to workers, reclaims included.", m.deliveries),
        ("flow_queue_reclaimed_total", "Deliveries after a worker stopped renewing its lease.", m.reclaimed),
        ("flow_queue_succeeded_total", "Jobs that succeeded.", m.succeeded),
        ("flow_queue_failed_total", "Jobs that failed for good.", m.failed),
        ("flow_queue_retried_total", "Automatic retries after a transient failure.", m.retried),
        ("flow_queue_dead_total", "Jobs dead-lettered.", m.dead),
        ("flow_queue_cancelled_total", "Jobs cancelled.", m.cancelled),
        ("flow_queue_requeued_total", "Jobs run again from the dashboard or the API.", m.requeued),
    ];
    for (name, help, value) in counters {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    histogram(&mut out, "flow_queue_wait_seconds", "From a job becoming runnable to its delivery.", &m.wait);
    histogram(&mut out, "flow_queue_processing_seconds", "From a delivery to its completion.", &m.processing);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    header(out, name, "histogram", help);
    for bucket in &h.buckets {
        let le = bucket.le_ms.map_or_else(|| "+Inf".to_owned(), |ms| (ms as f64 / 1000.0).to_string());
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", bucket.count);
    }
    let _ = writeln!(out, "{name}_sum {}", h.sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count {}", h.count);
}

fn state_counts(c: &StateCounts) -> [(&'static str, u64); 7] {
    [
        ("waiting", c.waiting),
        ("delayed", c.delayed),
        ("running", c.running),
        ("succeeded", c.succeeded),
        ("failed", c.failed),
        ("dead", c.dead),
        ("cancelled", c.cancelled),
    ]
}

/// `/metrics` alone on `bind`, for a worker process, until `shutdown`.
pub(crate) async fn serve_alone(
    listener: tokio::net::TcpListener,
    exporter: Exporter,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|headers: HeaderMap| async move {
                match exporter.authorize(&headers) {
                    Ok(()) => exporter.render(""),
                    Err(e) => e.into_response(),
                }
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics here") });
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_metrics_render_as_prometheus_text() {
        let mut m = Metrics { enqueued: 3, succeeded: 2, ..Metrics::default() };
        m.counts.waiting = 1;
        m.wait = Histogram {
            count: 2,
            sum_ms: 1500,
            buckets: vec![
                flow_queue::Bucket { le_ms: Some(1000), count: 1 },
                flow_queue::Bucket { le_ms: None, count: 2 },
            ],
        };
        let text = queue_exposition(Some(&m));
        for line in [
            "flow_queue_up 1",
            "flow_queue_jobs{state=\"waiting\"} 1",
            "flow_queue_enqueued_total 3",
            "flow_queue_succeeded_total 2",
            "flow_queue_wait_seconds_bucket{le=\"1\"} 1",
            "flow_queue_wait_seconds_bucket{le=\"+Inf\"} 2",
            "flow_queue_wait_seconds_sum 1.5",
            "flow_queue_wait_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(
            queue_exposition(None),
            "# HELP flow_queue_up Whether the job queue (Redis) answered this scrape.\n# TYPE flow_queue_up gauge\nflow_queue_up 0\n"
        );
    }

    #[test]
    fn metrics_token_is_checked() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
