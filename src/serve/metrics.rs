//! `GET /metrics`: Prometheus text (OpenMetrics) of requests and their
//! latency by route, layout and status, the lanes' depths, documents made
//! and refused by reason, and jobs by state.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::Shared;

/// The layout a response was made with (a response extension the
/// handlers set), for the request metrics.
#[derive(Clone)]
pub struct LayoutLabel(pub String);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    layout: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DocumentLabels {
    channel: String,
    outcome: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type Latency = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Latency,
    documents: Family<DocumentLabels, Counter>,
    lanes: Family<LaneLabels, Gauge>,
    jobs: Family<StateLabels, Gauge>,
}

fn latency() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// The metrics, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("letterpress");
        let requests: Latency = Family::new_with_constructor(latency);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, queue time included",
            requests.clone(),
        );
        let documents = Family::<DocumentLabels, Counter>::default();
        registry.register(
            "documents",
            "Documents made on demand, and requests refused, by channel and reason",
            documents.clone(),
        );
        let lanes = Family::<LaneLabels, Gauge>::default();
        registry.register("lane", "Work in each lane: rendering, waiting and stuck (on-demand documents; stuck: workers given up in a render that has not ended), queued (jobs)", lanes.clone());
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register("jobs", "Jobs in the state folder by state", jobs.clone());
        Metrics {
            registry,
            requests,
            documents,
            lanes,
            jobs,
        }
    }

    /// Counts a document made (`reason` empty) or refused.
    pub fn document(&self, channel: &str, reason: &str) {
        let outcome = if reason.is_empty() {
            "rendered"
        } else {
            "refused"
        };
        self.documents
            .get_or_create(&DocumentLabels {
                channel: channel.to_owned(),
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, app: &super::App) -> String {
        let lane = |lane: &str, stage: &str, n: usize| {
            self.lanes
                .get_or_create(&LaneLabels {
                    lane: lane.to_owned(),
                    stage: stage.to_owned(),
                })
                .set(n as i64);
        };
        lane("on-demand", "rendering", app.lane.rendering());
        lane("on-demand", "waiting", app.lane.waiting());
        lane("on-demand", "stuck", app.lane.stuck());
        lane("jobs", "queued", app.job_lane.queued());
        self.jobs.clear();
        for (state, n) in app.jobs.counts() {
            let state = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.jobs
                .get_or_create(&StateLabels { state })
                .set(n as i64);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("metrics encode to a string");
        text
    }
}

/// Times every request and counts it by route, layout and status.
pub async fn track(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    let layout = res
        .extensions()
        .get::<LayoutLabel>()
        .map(|l| l.0.clone())
        .unwrap_or_default();
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            layout,
            status: res.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    res
}
