//! The explorer page (ADR 0014), served on the gRPC port: a `GET` or `HEAD` (gRPC and gRPC-web
//! are `POST`) for `/explorer/…` gets a file embedded in the binary, the chain's genesis as the
//! compact JSON whose BLAKE3 is the genesis hash (the page checks it against the hash its user
//! pinned), or the page's settings; `/` redirects to `/explorer/`.

use std::path::PathBuf;

use bytes::Bytes;
use quorate_genesis::Genesis;
use quorate_proto::crypto::Hash32;
use tonic::body::Body;
use tonic::codegen::http::{header, HeaderValue, Method, Request, Response, StatusCode};

/// Where the genesis the page is given comes from.
#[derive(Debug)]
pub enum GenesisBytes {
    /// Serialized already (a genesis the node was given in memory).
    Ready(Bytes),
    /// Read from this file by a task started with the server (the node's start does not wait
    /// for a large genesis to be parsed).
    File(PathBuf),
}

/// What the explorer serves besides its files.
#[derive(Debug)]
pub struct Site {
    genesis: std::sync::Arc<Loaded>,
    config_json: Bytes,
}

/// The genesis for the page, loaded once by a task of its own (a client that goes away does
/// not start the work again); an error is logged once and kept until the node restarts.
#[derive(Debug)]
struct Loaded {
    source: GenesisBytes,
    hash: Hash32,
    cell: tokio::sync::OnceCell<Result<Bytes, String>>,
}

impl Loaded {
    async fn get(&self) -> Result<Bytes, String> {
        self.cell
            .get_or_init(|| async {
                let loaded = load(&self.source, self.hash).await;
                if let Err(e) = &loaded {
                    tracing::error!(error = %e, "explorer: cannot serve the genesis");
                }
                loaded
            })
            .await
            .clone()
    }
}

/// The genesis of `source` as compact JSON, checked to hash to `hash`.
async fn load(source: &GenesisBytes, hash: Hash32) -> Result<Bytes, String> {
    let bytes = match source {
        GenesisBytes::Ready(b) => b.clone(),
        GenesisBytes::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                Genesis::load(&path)
                    .map(|g| Bytes::from(serde_json::to_vec(&g).expect("serializes")))
                    .map_err(|e| format!("genesis file {}: {e}", path.display()))
            })
            .await
            .map_err(|e| format!("genesis loading task: {e}"))??
        }
    };
    if Hash32::of(&bytes) != hash {
        return Err(format!(
            "the genesis file no longer hashes to the chain's genesis {hash}"
        ));
    }
    Ok(bytes)
}

impl Site {
    /// The site of a node whose chain is `chain_id` with genesis `genesis_hash`, whose key is
    /// `node_key`, offering `peer_urls` for cross-checks. Starts loading the genesis (in a
    /// runtime).
    pub fn new(
        genesis: GenesisBytes,
        genesis_hash: Hash32,
        chain_id: &str,
        node_key: &str,
        peer_urls: &[String],
    ) -> Self {
        let config = serde_json::json!({
            "chain_id": chain_id,
            "node_key": node_key,
            "peer_urls": peer_urls,
        });
        let genesis = std::sync::Arc::new(Loaded {
            source: genesis,
            hash: genesis_hash,
            cell: tokio::sync::OnceCell::new(),
        });
        let loading = genesis.clone();
        tokio::spawn(async move {
            let _ = loading.get().await;
        });
        Self {
            genesis,
            config_json: Bytes::from(config.to_string()),
        }
    }
}

/// Whether `req` asks for a page rather than calling a service.
pub fn is_page_request<B>(req: &Request<B>) -> bool {
    req.method() == Method::GET || req.method() == Method::HEAD
}

/// The answer to a page request; `site` is none when the explorer is turned off.
pub async fn respond<B>(site: Option<&Site>, req: Request<B>) -> Response<Body> {
    let Some(site) = site else {
        return text(
            StatusCode::NOT_FOUND,
            "the explorer is turned off on this node (explorer.enabled = false)",
        );
    };
    let head = req.method() == Method::HEAD;
    let path = req.uri().path();
    let response = match path {
        // The query goes along: `/?genesis=<hash>` pins it on the page.
        "/" | "/explorer" => redirect(req.uri().query()),
        "/explorer/genesis.json" => match site.genesis.get().await {
            Ok(bytes) => file(bytes, "application/json", false),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this node cannot serve its genesis; its log says why",
            ),
        },
        "/explorer/config.json" => file(site.config_json.clone(), "application/json", false),
        _ => match path
            .strip_prefix("/explorer/")
            .and_then(quorate_explorer::asset)
        {
            Some(a) => file(Bytes::from_static(a.body), a.content_type, a.immutable),
            None => text(StatusCode::NOT_FOUND, &format!("no page {path}")),
        },
    };
    let length = http_body::Body::size_hint(response.body())
        .exact()
        .unwrap_or_default();
    let mut response = response;
    if head {
        *response.body_mut() = Body::empty();
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn file(body: Bytes, content_type: &'static str, immutable: bool) -> Response<Body> {
    let mut r = Response::new(Body::new(http_body_util::Full::new(body)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Scripts and styles only from the node itself; calls to any validator (cross-checks).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src *; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    r
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = file(
        Bytes::from(format!("{message}\n")),
        "text/plain; charset=utf-8",
        false,
    );
    *r.status_mut() = status;
    r
}

fn redirect(query: Option<&str>) -> Response<Body> {
    let to = match query {
        Some(q) => format!("/explorer/?{q}"),
        None => "/explorer/".to_owned(),
    };
    let mut r = text(StatusCode::FOUND, &to);
    match HeaderValue::from_str(&to) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "a query that is no URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn get(path: &str) -> Request<Body> {
        Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Body::empty())
            .expect("request")
    }

    async fn body(r: Response<Body>) -> Bytes {
        r.into_body().collect().await.expect("body").to_bytes()
    }

    fn site(genesis: &Genesis) -> Site {
        let bytes = Bytes::from(serde_json::to_vec(genesis).expect("json"));
        Site::new(
            GenesisBytes::Ready(bytes),
            genesis.hash(),
            &genesis.chain_id,
            "ab",
            &["http://peer:7051".to_owned()],
        )
    }

    #[tokio::test]
    async fn the_page_its_genesis_and_settings_are_served_and_nothing_else() {
        let genesis = quorate_genesis::dev_genesis();
        let site = site(&genesis);
        let r = respond(Some(&site), get("/")).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[header::LOCATION], "/explorer/");
        let r = respond(Some(&site), get("/explorer/")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(String::from_utf8_lossy(&body(r).await).contains("<html"));
        // The genesis as the bytes whose hash is the genesis hash: what the page checks.
        let r = respond(Some(&site), get("/explorer/genesis.json")).await;
        assert_eq!(Hash32::of(&body(r).await), genesis.hash());
        let r = respond(Some(&site), get("/explorer/config.json")).await;
        let config: serde_json::Value = serde_json::from_slice(&body(r).await).expect("json");
        assert_eq!(config["peer_urls"][0], "http://peer:7051");
        assert_eq!(config["chain_id"], genesis.chain_id);
        for missing in [
            "/explorer/../genesis.json",
            "/explorer/nothing.js",
            "/metrics",
        ] {
            let r = respond(Some(&site), get(missing)).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
        }
        // HEAD: the headers, no body.
        let mut head = get("/explorer/");
        *head.method_mut() = Method::HEAD;
        let r = respond(Some(&site), head).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_ne!(r.headers()[header::CONTENT_LENGTH], "0");
        assert!(body(r).await.is_empty());
        let r = respond(Some(&site), get("/?genesis=ab12")).await;
        assert_eq!(r.headers()[header::LOCATION], "/explorer/?genesis=ab12");
        // Turned off: every page request is a 404 that says why.
        let r = respond(None, get("/explorer/")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&body(r).await).contains("explorer.enabled = false"));
    }

    /// A genesis file edited after the chain started is not handed to the page as the chain's.
    #[tokio::test]
    async fn a_genesis_file_that_no_longer_hashes_to_the_chains_is_refused() {
        let genesis = quorate_genesis::dev_genesis();
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("genesis.json");
        let mut edited = genesis.clone();
        edited.chain_id = "another".into();
        edited.save(&path).expect("save");
        let site = Site::new(
            GenesisBytes::File(path),
            genesis.hash(),
            &genesis.chain_id,
            "ab",
            &[],
        );
        let r = respond(Some(&site), get("/explorer/genesis.json")).await;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
