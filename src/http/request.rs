//! Which requests may be sent again, and how: [`HttpRequests`] retries only the methods RFC
//! 9110 calls idempotent (or a request that carries an `Idempotency-Key`) and copies a
//! request with its headers, extensions and a replay of its body; [`ReplayBodyLayer`] gives a
//! streamed body (hyper's `Incoming`, axum's `Body`) a bounded replay buffer first.

use std::fmt;
use std::task::{Context, Poll};

use http::{HeaderName, Method, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::body::ReplayBody;
use crate::retry::CloneRequest;

/// The replay limit of [`ReplayBodyLayer::default`]: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// The header that makes a non-idempotent request retryable: the client promises that the
/// server deduplicates requests carrying the same key (IETF draft
/// `draft-ietf-httpapi-idempotency-key-header`, as Stripe and others use it).
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

// The standard methods, one bit each; any other method (an extension) is never retried
// unless it carries an `Idempotency-Key`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::POST,
    Method::PATCH,
    Method::CONNECT,
];

const fn bit(index: usize) -> u16 {
    1 << index
}

/// GET, HEAD, PUT, DELETE, OPTIONS and TRACE: RFC 9110, section 9.2.2.
const IDEMPOTENT: u16 = bit(0) | bit(1) | bit(2) | bit(3) | bit(4) | bit(5);

fn method_bit(method: &Method) -> u16 {
    METHODS.iter().position(|m| m == method).map_or(0, bit)
}

/// Decides which HTTP requests a retry may send again, and copies them.
///
/// | setting | default | source |
/// |---|---|---|
/// | retried methods | GET, HEAD, PUT, DELETE, OPTIONS, TRACE | RFC 9110, section 9.2.2: the idempotent methods |
/// | [`idempotency_key`](Self::idempotency_key) | on: any method carrying an `Idempotency-Key` header is retried | the IETF `Idempotency-Key` draft |
///
/// A request that may not be sent twice is neither copied nor retried: its result is
/// returned as it is, and a [`GiveUp`](crate::retry::Event::GiveUp) event says
/// [`NotIdempotent`](crate::retry::GiveUpReason::NotIdempotent).
///
/// Copies keep the method, URI, version, headers and extensions. The body is copied through
/// [`ReplayBody::try_clone`] (for `Request<ReplayBody<B>>`, see [`ReplayBodyLayer`]) or
/// `Clone` (for a body that is `Clone`, such as `http_body_util::Full<Bytes>`). A body that
/// outgrew its replay limit cannot be copied: the call is not retried, and an error result
/// says so ([`RequestNotCopied`](crate::retry::RequestNotCopied)).
///
/// ```
/// use http::Method;
/// use seawall::http::{HttpRequests, HttpRetryClassifier, ReplayBodyLayer};
/// use seawall::retry::Retry;
/// use tower::ServiceBuilder;
///
/// let retry = Retry::default();
/// let stack = ServiceBuilder::new()
///     .layer(ReplayBodyLayer::new(16 * 1024))
///     .layer(
///         retry
///             .layer()
///             .classifier(HttpRetryClassifier::default())
///             // POST too: say, the server deduplicates by a field of the body.
///             .clone_request(HttpRequests::default().retry_method(Method::POST)),
///     );
/// # drop(stack);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HttpRequests {
    methods: u16,
    idempotency_key: bool,
}

impl Default for HttpRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpRequests {
    /// The defaults: idempotent methods, and any request with an `Idempotency-Key`.
    pub const fn new() -> Self {
        HttpRequests {
            methods: IDEMPOTENT,
            idempotency_key: true,
        }
    }

    /// Retries `method` too (e.g. `POST` to an endpoint known to be idempotent). Extension
    /// methods cannot be opted in; give such requests an `Idempotency-Key`.
    pub fn retry_method(mut self, method: Method) -> Self {
        self.methods |= method_bit(&method);
        self
    }

    /// Never retries `method` (e.g. `DELETE` on an API where it is not idempotent).
    pub fn never_retry_method(mut self, method: Method) -> Self {
        self.methods &= !method_bit(&method);
        self
    }

    /// Whether a request carrying an `Idempotency-Key` header may be retried whatever its
    /// method (default `true`).
    pub const fn idempotency_key(mut self, honour: bool) -> Self {
        self.idempotency_key = honour;
        self
    }

    /// Whether a request with this method and headers may be sent again.
    pub fn may_retry<B>(&self, req: &Request<B>) -> bool {
        self.methods & method_bit(req.method()) != 0
            || (self.idempotency_key && req.headers().contains_key(&IDEMPOTENCY_KEY))
    }
}

/// A copy of `req`'s head with `body`.
pub(crate) fn with_body<B, C>(req: &Request<B>, body: C) -> Request<C> {
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    copy
}

impl<B: http_body::Body> CloneRequest<Request<ReplayBody<B>>> for HttpRequests {
    fn clone_request(&self, req: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        let body = req.body().try_clone()?;
        Some(with_body(req, body))
    }

    fn is_idempotent(&self, req: &Request<ReplayBody<B>>) -> bool {
        self.may_retry(req)
    }
}

impl crate::retry::KnowsIdempotency for HttpRequests {
    /// `true`: RFC 9110's idempotent methods, or an `Idempotency-Key`.
    fn knows_idempotency(&self) -> bool {
        true
    }
}

impl fmt::Debug for HttpRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<&str> = METHODS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.methods & bit(*i) != 0)
            .map(|(_, m)| m.as_str())
            .collect();
        f.debug_struct("HttpRequests")
            .field("methods", &methods)
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

/// A request body that is `Clone` (`Full<Bytes>`, `Empty<Bytes>`, `String`): copied with
/// `Clone`, no replay buffer needed.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use seawall::http::HttpRequests;
/// use seawall::retry::CloneRequest;
///
/// let req = http::Request::put("http://127.0.0.1/x").body(Full::new(Bytes::from("hi"))).unwrap();
/// let copy = HttpRequests::default().clone_request(&req).expect("copied");
/// assert_eq!(copy.uri(), req.uri());
/// ```
impl<B: Clone> CloneRequest<Request<B>> for HttpRequests {
    fn clone_request(&self, req: &Request<B>) -> Option<Request<B>> {
        Some(with_body(req, req.body().clone()))
    }

    fn is_idempotent(&self, req: &Request<B>) -> bool {
        self.may_retry(req)
    }
}

// ===== ReplayBodyLayer =====

/// Wraps each request's body in a [`ReplayBody`] with a replay buffer of `limit` bytes, so
/// a retry layer inside it (with [`HttpRequests`]) can send the body again. Put it outside
/// the retry layer. An empty body, or one whose known size is over the limit, costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct ReplayBodyLayer {
    limit: usize,
}

impl ReplayBodyLayer {
    /// Keeps up to `limit` bytes of each body for replays.
    pub const fn new(limit: usize) -> Self {
        ReplayBodyLayer { limit }
    }
}

impl Default for ReplayBodyLayer {
    /// A limit of [`DEFAULT_REPLAY_LIMIT`] (64 KiB).
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_LIMIT)
    }
}

impl<S> Layer<S> for ReplayBodyLayer {
    type Service = ReplayBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReplayBodyService {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`ReplayBodyLayer`].
#[derive(Debug, Clone)]
pub struct ReplayBodyService<S> {
    inner: S,
    limit: usize,
}

impl<S> ReplayBodyService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ReplayBodyService<S>
where
    S: Service<Request<ReplayBody<B>>>,
    B: http_body::Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<B>) -> Self::Future {
        let limit = self.limit;
        self.inner
            .call(req.map(|body| ReplayBody::new(body, limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method) -> Request<()> {
        Request::builder().method(method).body(()).unwrap()
    }

    #[test]
    fn only_idempotent_methods_are_retried_by_default() {
        let r = HttpRequests::default();
        for m in [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::TRACE,
        ] {
            assert!(r.may_retry(&req(m.clone())), "{m}");
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(!r.may_retry(&req(m.clone())), "{m}");
        }
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert!(!r.may_retry(&req(custom.clone())));
        // Extension methods cannot be opted in by name.
        assert!(!r
            .retry_method(custom)
            .may_retry(&req(Method::from_bytes(b"PURGE").unwrap())));
    }

    #[test]
    fn an_idempotency_key_makes_any_method_retryable_unless_turned_off() {
        let mut post = req(Method::POST);
        post.headers_mut()
            .insert(IDEMPOTENCY_KEY.clone(), "k-1".parse().unwrap());
        assert!(HttpRequests::default().may_retry(&post));
        assert!(!HttpRequests::default()
            .idempotency_key(false)
            .may_retry(&post));
    }

    #[test]
    fn methods_can_be_opted_in_and_out() {
        let r = HttpRequests::default()
            .retry_method(Method::POST)
            .never_retry_method(Method::DELETE);
        assert!(r.may_retry(&req(Method::POST)));
        assert!(!r.may_retry(&req(Method::DELETE)));
        assert!(r.may_retry(&req(Method::GET)));
    }

    #[test]
    fn a_copy_keeps_the_head_and_extensions() {
        #[derive(Clone, PartialEq, Debug)]
        struct Tag(u8);
        let mut original = Request::builder()
            .method(Method::PUT)
            .uri("http://127.0.0.1:1/a?b=c")
            .header("x-h", "v")
            .body(String::from("body"))
            .unwrap();
        original.extensions_mut().insert(Tag(7));
        let copy = HttpRequests::default().clone_request(&original).unwrap();
        assert_eq!(copy.method(), Method::PUT);
        assert_eq!(copy.uri(), original.uri());
        assert_eq!(copy.headers()["x-h"], "v");
        assert_eq!(copy.extensions().get::<Tag>(), Some(&Tag(7)));
        assert_eq!(copy.body(), "body");
    }
}
