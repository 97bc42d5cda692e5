//! Which gRPC calls retry may send again.

use std::fmt;
use std::sync::Arc;

use http::Request;

use crate::http::{with_body, ReplayBody};
use crate::retry::CloneRequest;

/// Which gRPC calls retry may send again, as gRPC's retry design (A6) scopes its retry
/// policy: by method (`/package.Service/Method`) or by service (`/package.Service/`), or every
/// call. gRPC calls are HTTP `POST`s, so [`HttpRequests`](crate::http::HttpRequests) would
/// retry none of them (or, told to retry `POST`, all of them).
///
/// A call outside the set is copied but sent again only if its failure proves it never left
/// (a refused connection: see [`Classify::is_unsent`](crate::Classify::is_unsent)). Copies
/// keep the head (method, URI, headers, extensions) and replay the body through
/// [`ReplayBody::try_clone`].
///
/// ```
/// use seawall::grpc::GrpcRequests;
///
/// // Check and Watch are safe to repeat; nothing else of this API is.
/// let requests = GrpcRequests::methods([
///     "/grpc.health.v1.Health/",
///     "/inventory.v1.Stock/Get",
/// ]);
/// # drop(requests);
/// ```
#[derive(Clone)]
pub struct GrpcRequests {
    /// `None`: every call.
    paths: Option<Arc<[Box<str>]>>,
}

impl GrpcRequests {
    /// Every call may be retried.
    pub fn all() -> Self {
        GrpcRequests { paths: None }
    }

    /// Only these methods (`/package.Service/Method`) and services (`/package.Service/`,
    /// with the trailing slash) may be retried.
    pub fn methods<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let paths: Vec<Box<str>> = paths
            .into_iter()
            .map(|p| p.into().into_boxed_str())
            .collect();
        GrpcRequests {
            paths: Some(paths.into()),
        }
    }

    /// Whether a call to `path` (the request URI's path) may be retried.
    pub fn may_retry(&self, path: &str) -> bool {
        match &self.paths {
            None => true,
            Some(paths) => paths.iter().any(|p| {
                if p.ends_with('/') {
                    path.starts_with(&**p)
                } else {
                    path == &**p
                }
            }),
        }
    }
}

impl<B: http_body::Body> CloneRequest<Request<ReplayBody<B>>> for GrpcRequests {
    fn clone_request(&self, req: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        let body = req.body().try_clone()?;
        Some(with_body(req, body))
    }

    fn is_idempotent(&self, req: &Request<ReplayBody<B>>) -> bool {
        self.may_retry(req.uri().path())
    }
}

impl crate::retry::KnowsIdempotency for GrpcRequests {
    /// `true`: the methods it names.
    fn knows_idempotency(&self) -> bool {
        true
    }
}

impl fmt::Debug for GrpcRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.paths {
            None => f.write_str("GrpcRequests(all)"),
            Some(paths) => f.debug_tuple("GrpcRequests").field(paths).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_services_scope_the_retries() {
        let r = GrpcRequests::methods(["/a.S/", "/b.T/Get"]);
        assert!(r.may_retry("/a.S/Anything"));
        assert!(r.may_retry("/b.T/Get"));
        assert!(!r.may_retry("/b.T/Put"));
        assert!(!r.may_retry("/b.T/GetMore"));
        assert!(!r.may_retry("/a.Sx/Anything"));
        assert!(GrpcRequests::all().may_retry("/any.Thing/At"));
        let empty: [&str; 0] = [];
        assert!(!GrpcRequests::methods(empty).may_retry("/a.S/M"));
    }

    #[test]
    fn a_call_is_copied_with_its_body_and_scoped_by_its_path() {
        use bytes::Bytes;
        use http_body_util::Full;
        let req = Request::post("http://127.0.0.1/b.T/Get")
            .header("te", "trailers")
            .body(ReplayBody::new(
                Full::new(Bytes::from_static(b"\0\0\0\0\0")),
                1024,
            ))
            .unwrap();
        let r = GrpcRequests::methods(["/b.T/Get"]);
        assert!(r.is_idempotent(&req));
        let copy = r.clone_request(&req).unwrap();
        assert_eq!(copy.uri(), req.uri());
        assert_eq!(copy.headers()["te"], "trailers");
        assert!(!GrpcRequests::methods(["/b.T/Put"]).is_idempotent(&req));
    }
}
