//! gRPC-web beside gRPC: a browser's calls (and their CORS preflights) go through tonic-web's
//! translation and the CORS layer; native gRPC calls go straight to the services; a page request
//! (`GET`, `HEAD`) goes to the explorer (`explorer.rs`). Through the
//! translation every native call had its request and response bodies boxed once more, which
//! cost about 12% of single-call throughput on one validator (docs/PERFORMANCE.md).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either};
use tonic::body::Body;
use tonic::codegen::http::{header, header::HeaderName, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::cors::{Any, Cors, CorsLayer};

use super::explorer::{self, Site};

/// Steers each request: native gRPC to the inner service, a page request to the explorer,
/// anything else through gRPC-web and CORS.
#[derive(Clone, Debug)]
pub struct WebOrNativeLayer {
    cors: CorsLayer,
    explorer: Option<Arc<Site>>,
}

impl WebOrNativeLayer {
    /// gRPC-web for pages of any origin (the API carries no cookies or credentials), the gRPC
    /// status headers exposed to them; the explorer's pages from `explorer` (none: turned off).
    pub fn new(explorer: Option<Arc<Site>>) -> Self {
        let cors = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::POST, Method::OPTIONS])
            .allow_headers(
                [
                    "content-type",
                    "x-grpc-web",
                    "x-user-agent",
                    "grpc-timeout",
                    "connect-protocol-version",
                    "connect-timeout-ms",
                ]
                .map(HeaderName::from_static),
            )
            .expose_headers(
                ["grpc-status", "grpc-message", "grpc-status-details-bin"]
                    .map(HeaderName::from_static),
            )
            .max_age(std::time::Duration::from_secs(24 * 3600));
        Self { cors, explorer }
    }
}

impl<S> Layer<S> for WebOrNativeLayer {
    type Service = WebOrNative<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WebOrNative {
            inner,
            cors: self.cors.clone(),
            explorer: self.explorer.clone(),
        }
    }
}

/// The service of [`WebOrNativeLayer`].
#[derive(Clone, Debug)]
pub struct WebOrNative<S> {
    inner: S,
    cors: CorsLayer,
    explorer: Option<Arc<Site>>,
}

/// Whether `req` is a native gRPC call (`application/grpc`, `application/grpc+proto`), not
/// gRPC-web (`application/grpc-web…`) nor anything else.
fn is_native_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/grpc") && !t.starts_with("application/grpc-web")
        })
}

impl<S> Service<Request<Body>> for WebOrNative<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<
        S::Future,
        Either<
            BoxFuture<'static, Result<Response<Body>, S::Error>>,
            <Cors<tonic_web::GrpcWebService<S>> as Service<Request<Body>>>::Future,
        >,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if is_native_grpc(&req) {
            return Either::Left(self.inner.call(req));
        }
        if explorer::is_page_request(&req) {
            let site = self.explorer.clone();
            return Either::Right(Either::Left(Box::pin(async move {
                Ok(explorer::respond(site.as_deref(), req).await)
            })));
        }
        // The service made ready by `poll_ready` goes into the gRPC-web stack; a clone stays.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let mut web = self
            .cors
            .clone()
            .layer(tonic_web::GrpcWebLayer::new().layer(ready));
        Either::Right(Either::Right(web.call(req)))
    }
}
