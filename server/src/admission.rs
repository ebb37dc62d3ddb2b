//! Who may open a WebSocket: pages of this service only (the `Origin` check), and not too many
//! connections from one address.
//!
//! A browser sends the page's origin with every WebSocket, and would send a visitor's credentials
//! from any site that opens one (cross-site WebSocket hijacking), so only pages of this service
//! itself, or of origins configured as allowed, may. A request without `Origin` is not from a
//! browser page; it still needs a valid token.
//!
//! The connection limit per address keeps one machine from exhausting the server's sockets and
//! memory. It is generous, because a whole office can sit behind one address. Behind a reverse
//! proxy every connection comes from the proxy, so the client's address is then read from a
//! header the proxy sets (`--client-ip-header`, e.g. `X-Real-IP`); the header is trusted only when
//! configured, since a client reaching the node directly could set it to anything.

use actix_web::HttpRequest;
use actix_web::http::header::{HOST, HeaderName, ORIGIN};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct Admission {
    /// The public URL's origin (`scheme://host[:port]`).
    public_origin: String,
    allowed_origins: Vec<String>,
    client_ip_header: Option<HeaderName>,
    max_per_address: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection; dropping it frees its place.
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(
        public_url: &str,
        allowed_origins: Vec<String>,
        client_ip_header: Option<HeaderName>,
        max_per_address: u32,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            public_origin: origin_of(public_url).to_owned(),
            allowed_origins,
            client_ip_header,
            max_per_address,
            open: Mutex::default(),
        })
    }

    /// Whether the page that asks (if any) is one of this service's, or of an allowed origin, or
    /// addressed to the host it was served from (a node reached directly, e.g. on localhost).
    pub fn origin_allowed(&self, req: &HttpRequest) -> bool {
        let Some(origin) = req.headers().get(ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        let same = |other: &str| other.trim_end_matches('/').eq_ignore_ascii_case(origin);
        if same(&self.public_origin) || self.allowed_origins.iter().any(|a| same(a)) {
            return true;
        }
        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
        origin.split_once("://").is_some_and(|(_, authority)| host.is_some_and(|h| h.eq_ignore_ascii_case(authority)))
    }

    /// The client's address: from the configured proxy header, else the peer's.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        match &self.client_ip_header {
            Some(name) => req.headers().get(name)?.to_str().ok()?.trim().parse().ok(),
            None => req.peer_addr().map(|a| a.ip()),
        }
    }

    /// A place for one more connection from `ip`, unless it already has the most allowed.
    pub fn take_slot(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= self.max_per_address {
            return None;
        }
        *n += 1;
        Some(Slot { admission: self.clone(), ip })
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn admission(extra: &[&str]) -> Arc<Admission> {
        let extra = extra.iter().map(|s| s.to_string()).collect();
        Admission::new("https://minim.example.org", extra, None, 2)
    }

    fn allowed(origin: Option<&str>, host: &str, extra: &[&str]) -> bool {
        let mut req = TestRequest::default().insert_header(("Host", host));
        if let Some(origin) = origin {
            req = req.insert_header(("Origin", origin));
        }
        admission(extra).origin_allowed(&req.to_http_request())
    }

    #[test]
    fn only_this_services_pages_may_open_a_websocket() {
        assert!(allowed(Some("https://minim.example.org"), "internal:8080", &[]), "the public origin");
        assert!(allowed(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", &[]), "the host it was addressed to");
        assert!(allowed(None, "internal:8080", &[]), "not a browser page");
        assert!(allowed(Some("https://intranet.example.org"), "x", &["https://intranet.example.org"]));
        assert!(!allowed(Some("https://evil.example"), "internal:8080", &[]));
        assert!(!allowed(Some("https://minim.example.org.evil.example"), "internal:8080", &[]));
        assert!(!allowed(Some("null"), "internal:8080", &[]), "sandboxed or file pages");
        assert!(!allowed(Some("https://evil.example"), "evil.example:443", &["https://intranet.example.org"]));
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://minim.example.org/base/"), "https://minim.example.org");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn each_address_gets_a_limited_number_of_connections_and_gets_them_back() {
        let admission = admission(&[]);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = admission.take_slot(a).unwrap();
        let _second = admission.take_slot(a).unwrap();
        assert!(admission.take_slot(a).is_none(), "the third from one address");
        assert!(admission.take_slot(b).is_some(), "another address is not affected");
        drop(first);
        assert!(admission.take_slot(a).is_some(), "a closed connection frees its place");
    }

    #[test]
    fn the_client_address_comes_from_the_proxy_header_only_when_configured() {
        let req = TestRequest::default()
            .peer_addr("192.0.2.1:5000".parse().unwrap())
            .insert_header(("X-Real-IP", "198.51.100.7"))
            .to_http_request();
        assert_eq!(admission(&[]).client_ip(&req), Some("192.0.2.1".parse().unwrap()), "the header is ignored");
        let behind_proxy = Admission::new("https://m", vec![], Some(HeaderName::from_static("x-real-ip")), 2);
        assert_eq!(behind_proxy.client_ip(&req), Some("198.51.100.7".parse().unwrap()));
    }
}
