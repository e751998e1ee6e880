//! The explorer's pages (ADR 0014), built from `explorer/` by the build script and embedded:
//! every validator serves them under `/explorer/` on its gRPC port.

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Its contents.
    pub body: &'static [u8],
    /// Its media type.
    pub content_type: &'static str,
    /// Whether its name carries a hash of its contents (Vite's `assets/`): cacheable for good.
    pub immutable: bool,
}

/// The file at `path` (relative to `/explorer/`; empty for the page itself).
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    let (_, body) = FILES.iter().find(|(name, _)| *name == path)?;
    Some(Asset {
        body,
        content_type: content_type(path),
        immutable: path.starts_with("assets/"),
    })
}

/// The media type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_script_are_embedded_with_their_types() {
        let page = asset("").expect("index.html");
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        let html = std::str::from_utf8(page.body).expect("utf-8");
        assert!(html.contains("/explorer/assets/"), "{html}");
        let script = FILES
            .iter()
            .find(|(name, _)| name.starts_with("assets/") && name.ends_with(".js"))
            .expect("a script");
        let js = asset(script.0).expect("script");
        assert!(js.immutable);
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert!(asset("nothing-here.js").is_none());
    }
}
