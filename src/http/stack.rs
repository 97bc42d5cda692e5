//! A standard resilient HTTP client stack in one layer, as Microsoft's standard resilience
//! handler offers: an overall timeout, retry with a budget and jitter (idempotent requests
//! only, `Retry-After` honoured, bodies replayed), a circuit breaker, and a per-attempt
//! timeout, each with the http classifiers and each still configurable.

use std::time::Duration;

use tower::timeout::{Timeout, TimeoutLayer};
use tower_layer::Layer;

use super::classify::{HttpBreakerClassifier, HttpRetryClassifier};
use super::request::{HttpRequests, ReplayBodyLayer, ReplayBodyService, DEFAULT_REPLAY_LIMIT};
use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, CircuitBreakerService};
use crate::retry::{Retry, RetryLayer, RetryService};

/// The service [`StandardClientLayer`] builds around `S`, outermost first: the overall
/// timeout, the replay buffer, retry, the circuit breaker, the per-attempt timeout.
pub type StandardClient<S> = Timeout<
    ReplayBodyService<
        RetryService<
            CircuitBreakerService<Timeout<S>, HttpBreakerClassifier>,
            HttpRetryClassifier,
            HttpRequests,
        >,
    >,
>;

/// A resilient HTTP client stack in one layer. Its error is a [`BoxError`](crate::BoxError)
/// that [`ErrorKind::of`](crate::ErrorKind::of) tells apart.
///
/// | part, outermost first | default | change with |
/// |---|---|---|
/// | overall timeout | 30 s (tower's `Timeout`, and the retry's deadline unless the policy has one) | [`total_timeout`](Self::total_timeout) |
/// | replay buffer for streamed bodies | 64 KiB per request | [`replay_limit`](Self::replay_limit) |
/// | retry | [`Retry::default`]: 3 retries, exponential backoff from 500 ms with full jitter, max 30 s, a budget of 50 % of recent successes + 10/s, 3 per failure streak; a `Retry-After` over the allowed wait gives up | [`retry`](Self::retry) |
/// | which requests are retried | [`HttpRequests::default`]: idempotent methods (RFC 9110), or with an `Idempotency-Key` | [`requests`](Self::requests) |
/// | what is retryable | [`HttpRetryClassifier::default`]: 408, 429, 502, 503, 504, transport failures | [`retry_classifier`](Self::retry_classifier) |
/// | circuit breaker | [`CircuitBreaker::default`]: opens after 5 consecutive failures, for 30 s | [`breaker`](Self::breaker) |
/// | what the breaker counts | [`HttpBreakerClassifier::default`]: 5xx and transport failures fail, 429 and other 4xx are ignored | [`breaker_classifier`](Self::breaker_classifier) |
/// | per-attempt timeout | 10 s (tower's `Timeout`, inside the breaker: a timeout is a failure) | [`attempt_timeout`](Self::attempt_timeout) |
///
/// The breaker sits inside retry: every attempt is admitted and recorded on its own, and an
/// open circuit ends the call at once (seawall's retry does not retry its own refusals).
///
/// The inner service receives `http::Request<ReplayBody<B>>`: build a hyper-util client for
/// that body type (`Client::builder(..).build_http::<ReplayBody<B>>()`).
///
/// ```
/// use seawall::http::StandardClientLayer;
/// use seawall::retry::Retry;
/// use std::time::Duration;
///
/// let retry = Retry::builder().max_retries(2).build().expect("valid policy");
/// let layer = StandardClientLayer::new()
///     .retry(retry)
///     .attempt_timeout(Duration::from_secs(2));
/// // `tower::ServiceBuilder::new().layer(layer).service(hyper_util_client)`; see
/// // `examples/http_client.rs`.
/// # drop(layer);
/// ```
#[derive(Clone, Debug)]
pub struct StandardClientLayer {
    total_timeout: Duration,
    attempt_timeout: Duration,
    replay_limit: usize,
    retry: Retry,
    requests: HttpRequests,
    retry_classifier: HttpRetryClassifier,
    breaker: CircuitBreaker,
    breaker_classifier: HttpBreakerClassifier,
}

impl Default for StandardClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl StandardClientLayer {
    /// The stack with every default (see the table above).
    pub fn new() -> Self {
        StandardClientLayer {
            total_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            replay_limit: DEFAULT_REPLAY_LIMIT,
            retry: Retry::default(),
            requests: HttpRequests::default(),
            retry_classifier: HttpRetryClassifier::default(),
            breaker: CircuitBreaker::default(),
            breaker_classifier: HttpBreakerClassifier::default(),
        }
    }

    /// The overall timeout of a call, all attempts and waits included (default 30 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// The timeout of each attempt (default 10 s); a timed-out attempt is a breaker failure
    /// and retryable.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How many bytes of a streamed request body are kept to replay it (default 64 KiB); a
    /// longer body is sent once.
    pub fn replay_limit(mut self, limit: usize) -> Self {
        self.replay_limit = limit;
        self
    }

    /// The retry policy (default [`Retry::default`]).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Which requests may be retried (default [`HttpRequests::default`]).
    pub fn requests(mut self, requests: HttpRequests) -> Self {
        self.requests = requests;
        self
    }

    /// What retry calls retryable (default [`HttpRetryClassifier::default`]).
    pub fn retry_classifier(mut self, classifier: HttpRetryClassifier) -> Self {
        self.retry_classifier = classifier;
        self
    }

    /// The circuit breaker (default [`CircuitBreaker::default`]). Share one breaker between
    /// the stacks in front of one dependency.
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = breaker;
        self
    }

    /// What the breaker counts as a failure (default [`HttpBreakerClassifier::default`]).
    pub fn breaker_classifier(mut self, classifier: HttpBreakerClassifier) -> Self {
        self.breaker_classifier = classifier;
        self
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &Retry {
        &self.retry
    }

    /// The circuit breaker in use.
    pub fn circuit_breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S> Layer<S> for StandardClientLayer {
    type Service = StandardClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let attempt = TimeoutLayer::new(self.attempt_timeout).layer(inner);
        let breaker = CircuitBreakerLayer::new(self.breaker.clone())
            .classifier(self.breaker_classifier)
            .layer(attempt);
        // The overall timeout is the retry's deadline too (unless it has its own), so a wait
        // that would outlast the call (a `Retry-After`, a backoff) gives up at once instead
        // of sleeping until the outer timeout cuts it.
        let retry = RetryLayer::new(self.retry.with_deadline_if_none(self.total_timeout))
            .classifier(self.retry_classifier)
            .clone_request(self.requests)
            .layer(breaker);
        let replay = ReplayBodyLayer::new(self.replay_limit).layer(retry);
        TimeoutLayer::new(self.total_timeout).layer(replay)
    }
}
