//! Trace export for the hosts: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the engine's
//! `tracing` spans (each execution, carrying its execution and correlation ids, and each node
//! under it; a sub-flow's execution under the node that ran it, so it joins its parent's trace)
//! are exported over OTLP/HTTP with protobuf (`opentelemetry-otlp`) in batches from a thread of
//! their own. The exporter reads the standard `OTEL_*` variables (endpoint, headers, timeout);
//! `OTEL_SERVICE_NAME` names the service, else the host's name.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

/// Why traces cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?}: cannot build the OTLP exporter: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// The exporting pipeline; [`Telemetry::shutdown`] (or dropping it) sends what is buffered.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// A pipeline to the endpoint in `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://collector:4318`;
    /// traces go to `/v1/traces` under it), or None when it is not set.
    pub fn from_env(default_service_name: &str) -> Result<Option<Telemetry>, TelemetryError> {
        let endpoint = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Ok(e) if !e.trim().is_empty() => e.trim().to_owned(),
            _ => return Ok(None),
        };
        // The exporter reads the endpoint from the environment too, but would not say which
        // value it could not use.
        let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(traces)
            .build()
            .map_err(|source| TelemetryError::Exporter { endpoint: endpoint.clone(), source })?;
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| default_service_name.to_owned());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        tracing::debug!(endpoint, "exporting traces over OTLP");
        Ok(Some(Telemetry { provider }))
    }

    /// The layer turning the engine's spans into OpenTelemetry spans. It takes the spans of
    /// the engine's crates at `info` and above, whatever FLOW_LOG keeps for the logs.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.provider.tracer("flow");
        let flow_crates = Targets::new()
            .with_target("flow_runtime", LevelFilter::INFO)
            .with_target("flow_engine", LevelFilter::INFO)
            .with_target("flow_server", LevelFilter::INFO)
            .with_target("flow_nodes", LevelFilter::INFO);
        tracing_opentelemetry::layer().with_tracer(tracer).with_filter(flow_crates)
    }

    /// Exports what is buffered and stops; errors are logged.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "cannot flush the traces");
        }
    }
}
