//! gRPC-web beside gRPC: a browser's calls (and their CORS preflights) go through tonic-web's
//! translation and the CORS layer; native gRPC calls go straight to the services. Through the
//! translation every native call had its request and response bodies boxed once more, which
//! cost about 12% of single-call throughput on one validator (docs/PERFORMANCE.md).

use std::task::{Context, Poll};

use futures::future::Either;
use tonic::body::Body;
use tonic::codegen::http::{header, header::HeaderName, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::cors::{Any, Cors, CorsLayer};

/// Steers each request: native gRPC to the inner service, anything else through gRPC-web and
/// CORS.
#[derive(Clone, Debug)]
pub struct WebOrNativeLayer {
    cors: CorsLayer,
}

impl WebOrNativeLayer {
    /// gRPC-web for pages of any origin (the API carries no cookies or credentials), the gRPC
    /// status headers exposed to them.
    pub fn new() -> Self {
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
        Self { cors }
    }
}

impl Default for WebOrNativeLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for WebOrNativeLayer {
    type Service = WebOrNative<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WebOrNative {
            inner,
            cors: self.cors.clone(),
        }
    }
}

/// The service of [`WebOrNativeLayer`].
#[derive(Clone, Debug)]
pub struct WebOrNative<S> {
    inner: S,
    cors: CorsLayer,
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
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Either<S::Future, <Cors<tonic_web::GrpcWebService<S>> as Service<Request<Body>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if is_native_grpc(&req) {
            return Either::Left(self.inner.call(req));
        }
        // The service made ready by `poll_ready` goes into the gRPC-web stack; a clone stays.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let mut web = self
            .cors
            .clone()
            .layer(tonic_web::GrpcWebLayer::new().layer(ready));
        Either::Right(web.call(req))
    }
}
