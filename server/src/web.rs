//! The browser app: the files `scripts/build-client` puts in the web directory, served from
//! memory, and the security headers every response carries.
//!
//! The app is a handful of files (the page, a boot script, the stylesheet, the JS glue and the
//! `.wasm`), so they are read and gzipped once at start-up rather than on each request.

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use anyhow::Context;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// What the app may load and do, and nothing more: its own scripts and WebAssembly (no inline
/// script, no `eval`), its own stylesheet (no inline styles), images from itself or `data:` (the QR
/// code), connections to itself (the API and the WebSocket) and to `blob:` (the Markdown
/// download); no framing by any site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self' blob:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers on every response. Links are capabilities, so no referrer ever leaves the page.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

struct Asset {
    content_type: &'static str,
    plain: Bytes,
    gzipped: Bytes,
}

/// The app's files, by name.
pub struct WebApp {
    assets: HashMap<String, Asset>,
}

fn content_type(name: &str) -> Option<&'static str> {
    Some(match name.rsplit_once('.')?.1 {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

impl WebApp {
    /// Reads the built app; an empty app (with a warning) if it has not been built.
    pub fn load(dir: &Path) -> anyhow::Result<WebApp> {
        let mut assets = HashMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "no browser app here: run scripts/build-client; serving the API only");
                return Ok(WebApp { assets });
            }
            Err(e) => return Err(e).with_context(|| format!("while reading {}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(content_type) = content_type(&name) else { continue };
            let plain = std::fs::read(entry.path()).with_context(|| format!("while reading {name}"))?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&plain)?;
            let gzipped = Bytes::from(gz.finish()?);
            assets.insert(name, Asset { content_type, plain: Bytes::from(plain), gzipped });
        }
        tracing::info!(dir = %dir.display(), files = assets.len(), "browser app loaded");
        Ok(WebApp { assets })
    }

    fn respond(&self, name: &str, req: &HttpRequest) -> HttpResponse {
        let Some(asset) = self.assets.get(name) else {
            return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body(if name == "index.html" {
                "The browser app is not built: run scripts/build-client, then restart minim.\n"
            } else {
                "Not found.\n"
            });
        };
        let gzip = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut response = HttpResponse::Ok();
        response
            .content_type(asset.content_type)
            // Names are not content-hashed, so browsers revalidate rather than keep stale code.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::VARY, "Accept-Encoding"));
        if gzip {
            response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
            response.body(asset.gzipped.clone())
        } else {
            response.body(asset.plain.clone())
        }
    }
}

/// GET and HEAD (actix strips the body of a HEAD answer).
fn get_or_head() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", get_or_head().to(page))
        .route("/b/{board}", get_or_head().to(page))
        .route("/{file}", get_or_head().to(file));
}

/// Every page of the app is the same document; the app routes by path.
async fn page(app: web::Data<WebApp>, req: HttpRequest) -> HttpResponse {
    app.respond("index.html", &req)
}

async fn file(app: web::Data<WebApp>, path: web::Path<String>, req: HttpRequest) -> HttpResponse {
    app.respond(&path, &req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, test};

    #[actix_web::test]
    async fn pages_answer_get_and_head_with_security_headers_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><title>minim</title>".repeat(20)).unwrap();
        let app = web::Data::new(WebApp::load(dir.path()).unwrap());
        let app = test::init_service(App::new().wrap(security_headers()).app_data(app).configure(routes)).await;
        let head = test::TestRequest::default().method(actix_web::http::Method::HEAD).uri("/");
        for req in [test::TestRequest::get().uri("/b/0123"), head] {
            let res = test::call_service(&app, req.insert_header((header::ACCEPT_ENCODING, "gzip")).to_request()).await;
            assert!(res.status().is_success());
            let headers = res.headers();
            assert_eq!(headers.get(header::CONTENT_SECURITY_POLICY).unwrap(), CONTENT_SECURITY_POLICY);
            assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
            assert_eq!(headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
            assert_eq!(headers.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        }
        let missing = test::call_service(&app, test::TestRequest::get().uri("/nope.js").to_request()).await;
        assert_eq!(missing.status(), actix_web::http::StatusCode::NOT_FOUND);
    }
}
