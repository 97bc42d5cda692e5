//! A tonic gRPC client behind seawall's retry and circuit breaker, against a local server
//! that goes down for a while and comes back.
//!
//! The server is tonic's ready-made Health service on a loopback port, behind a small layer
//! that, during the outage, answers every call as an overloaded gRPC server does: a
//! Trailers-Only response with `grpc-status: 14` (UNAVAILABLE) and
//! `grpc-retry-pushback-ms: 20`. The client is a `HealthClient` over a tonic `Channel`
//! wrapped in:
//!
//! - `ReplayBodyLayer`: keeps a copy of each request body, so it can be sent again;
//! - retry with `GrpcRetryClassifier` (gRPC's retry design, A6: UNAVAILABLE is retried, a
//!   server's pushback replaces the backoff) and `HttpRequests` told to retry POST (every
//!   gRPC call is a POST);
//! - a circuit breaker with `GrpcBreakerClassifier`, inside the retry, so each attempt is
//!   admitted and counted on its own;
//! - a `map_request` turning the replayable body back into tonic's `Body`, which is all a
//!   `Channel` takes.
//!
//! It makes calls in three phases (healthy, outage, recovery) and prints, per phase, the
//! successes, the failures by gRPC code, the retries (a retry listener) and the breaker's
//! rejections (a breaker listener), plus every breaker state change as it happens. During
//! the outage the retries use the server's pushback, then the breaker opens and calls fail
//! fast without reaching the server; once the server is back and the breaker's wait is over,
//! its probes get through and it closes.
//!
//! Note what the caller sees for a call the breaker refused: tonic turns the stack's error
//! into a `Status` with code UNKNOWN (its mapping of errors it does not recognise), with
//! seawall's `CircuitOpen` as the source, which `ErrorKind::of` finds.
//!
//! Run it with `cargo run --features grpc --example grpc`; it takes about a second and stops
//! by itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use seawall::circuit_breaker::{CircuitBreaker, Event as BreakerEvent};
use seawall::grpc::{GrpcBreakerClassifier, GrpcRetryClassifier};
use seawall::http::{HttpRequests, ReplayBody, ReplayBodyLayer};
use seawall::retry::{Backoff, Jitter, Retry};
use seawall::{BoxError, ErrorKind};
use tonic::body::Body;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::{Layer, Service, ServiceBuilder};

const SERVICE: &str = "example.Greeter";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let start = Instant::now();

    // ===== the server: Health, behind an outage switch =====
    let down = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU32::new(0));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse()?)?;
    let addr = incoming.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = Server::builder()
        .layer(OutageLayer {
            down: down.clone(),
            seen: served.clone(),
        })
        .add_service(health);
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    }));
    println!("server listening on {addr}");

    // ===== the client: retry outside a breaker, around a tonic Channel =====
    let retries = Arc::new(AtomicU32::new(0));
    let r = retries.clone();
    let retry = Retry::builder()
        .max_retries(2)
        .backoff(
            Backoff::exponential(Duration::from_millis(10))
                .max_delay(Duration::from_millis(100))
                .jitter(Jitter::None),
        )
        .no_budget()
        .on_retry(move |event| {
            r.fetch_add(1, Ordering::Relaxed);
            let from = if event.retry_after {
                "server pushback"
            } else {
                "backoff"
            };
            println!(
                "    retry after attempt {}: wait {:?} ({from})",
                event.attempt, event.delay
            );
        })
        .build()?;
    let rejections = Arc::new(AtomicU32::new(0));
    let rej = rejections.clone();
    let breaker = CircuitBreaker::builder()
        .name("health")
        .failure_threshold(4)
        .wait_in_open(Duration::from_millis(250))
        .half_open_max_calls(2)
        .on_state_change(move |breaker, change| {
            println!(
                "    [{:>4} ms] breaker {}: {} -> {}",
                start.elapsed().as_millis(),
                breaker.name().unwrap_or("?"),
                change.from.as_str(),
                change.to.as_str()
            );
        })
        .listener(move |_: &CircuitBreaker, event: &BreakerEvent| {
            if let BreakerEvent::Rejected(_) = event {
                rej.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let stack = ServiceBuilder::new()
        .layer(ReplayBodyLayer::new(16 * 1024))
        .layer(
            retry
                .layer()
                .classifier(GrpcRetryClassifier::new())
                .clone_request(HttpRequests::default().retry_method(Method::POST)),
        )
        .layer(breaker.layer().classifier(GrpcBreakerClassifier::new()))
        // `ReplayBodyLayer` changed the body type; a `Channel` takes tonic's `Body` only.
        .map_request(|req: Request<ReplayBody<Body>>| req.map(Body::new))
        .service(channel);
    let mut client = HealthClient::new(stack);

    // ===== the phases =====
    let phases = [
        ("healthy", false, 5, Duration::from_millis(10)),
        ("outage", true, 8, Duration::from_millis(30)),
        ("recovery", false, 10, Duration::from_millis(50)),
    ];
    for (name, outage, calls, pause) in phases {
        down.store(outage, Ordering::SeqCst);
        let (retries_before, rejections_before) = (
            retries.load(Ordering::Relaxed),
            rejections.load(Ordering::Relaxed),
        );
        let served_before = served.load(Ordering::Relaxed);
        println!(
            "== {name}: server {} ==",
            if outage {
                "answers UNAVAILABLE, pushback 20 ms"
            } else {
                "up"
            }
        );
        let (mut ok, mut failed) = (0, Vec::new());
        for i in 1..=calls {
            let request = HealthCheckRequest {
                service: SERVICE.into(),
            };
            match client.check(request).await {
                Ok(_) => {
                    ok += 1;
                    println!("  call {i}: SERVING");
                }
                Err(status) => {
                    let kind = ErrorKind::of(&status);
                    println!(
                        "  call {i}: {:?} ({kind:?}): {}",
                        status.code(),
                        status.message()
                    );
                    failed.push(format!("{:?}/{kind:?}", status.code()));
                }
            }
            tokio::time::sleep(pause).await;
        }
        println!(
            "  -> {ok} ok, {} failed {failed:?}, {} retries, {} breaker rejections, {} calls reached the server; breaker {}",
            failed.len(),
            retries.load(Ordering::Relaxed) - retries_before,
            rejections.load(Ordering::Relaxed) - rejections_before,
            served.load(Ordering::Relaxed) - served_before,
            breaker.state().as_str(),
        );
    }

    let _ = stop.send(());
    server.await??;
    println!("done in {} ms", start.elapsed().as_millis());
    Ok(())
}

// ===== the outage switch, a server-side tower layer =====

/// Answers every call UNAVAILABLE (Trailers-Only, with a 20 ms pushback) while `down` is
/// set; counts the calls that reach the server.
#[derive(Clone)]
struct OutageLayer {
    down: Arc<AtomicBool>,
    seen: Arc<AtomicU32>,
}

impl<S> Layer<S> for OutageLayer {
    type Service = Outage<S>;
    fn layer(&self, inner: S) -> Outage<S> {
        Outage {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
struct Outage<S> {
    inner: S,
    layer: OutageLayer,
}

impl<S, B> Service<Request<B>> for Outage<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.layer.seen.fetch_add(1, Ordering::Relaxed);
        if !self.layer.down.load(Ordering::SeqCst) {
            return Box::pin(self.inner.call(req));
        }
        let mut status = tonic::Status::unavailable("down for maintenance");
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "20".parse().expect("ascii"));
        let response = status.into_http();
        Box::pin(async move { Ok(response) })
    }
}
