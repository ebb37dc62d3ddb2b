//! Real headless Chromium, driven over WebDriver (`chromedriver` from Debian's `chromium-driver`).
//!
//! Each [`Browser`] is its own Chromium process with its own fresh profile, so a facilitator,
//! participants and a projector are as separate as people on different machines.

use anyhow::{Context, anyhow, bail};
use fantoccini::elements::Element;
use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use serde_json::json;
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

/// How long a page gets to show what a test waits for.
pub const PAGE_PATIENCE: Duration = Duration::from_secs(15);

/// A `chromedriver` process; it hosts any number of browsers.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub async fn start() -> anyhow::Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Process::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("chromedriver is missing: install Debian's chromium and chromium-driver (scripts/test does)")?;
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = tokio::time::Instant::now() + PAGE_PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not start listening");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(driver)
    }

    /// A new, separate headless Chromium.
    pub async fn browser(&self) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                // The background-networking flags keep Chromium from calling out of this closed network.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let web = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("while starting Chromium")?;
        Ok(Browser { web, _profile: profile })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser and the page it shows.
pub struct Browser {
    pub web: WebDriver,
    _profile: tempfile::TempDir,
}

fn css(selector: &str) -> Locator<'_> {
    Locator::Css(selector)
}

impl Browser {
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.web.goto(url).await.with_context(|| format!("while opening {url}"))
    }

    /// Waits for an element to exist.
    pub async fn find(&self, selector: &str) -> anyhow::Result<Element> {
        self.web
            .wait()
            .at_most(PAGE_PATIENCE)
            .for_element(css(selector))
            .await
            .map_err(|e| anyhow!("{selector} did not appear: {e}"))
    }

    pub async fn all(&self, selector: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self.web.find_all(css(selector)).await?)
    }

    pub async fn exists(&self, selector: &str) -> anyhow::Result<bool> {
        Ok(!self.all(selector).await?.is_empty())
    }

    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        let element = self.find(selector).await?;
        self.until(&format!("{selector} is enabled"), || async { Ok(element.is_enabled().await?) }).await?;
        element.click().await.map_err(|e| anyhow!("clicking {selector}: {e}"))
    }

    /// Replaces an input's text.
    pub async fn fill(&self, selector: &str, text: &str) -> anyhow::Result<()> {
        let input = self.find(selector).await?;
        input.clear().await?;
        input.send_keys(text).await.map_err(|e| anyhow!("typing into {selector}: {e}"))
    }

    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        Ok(self.find(selector).await?.text().await?)
    }

    pub async fn attr(&self, selector: &str, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.find(selector).await?.attr(name).await?)
    }

    /// Polls `check` until it holds, or fails after [`PAGE_PATIENCE`] naming `what`.
    pub async fn until<F, Fut>(&self, what: &str, mut check: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let deadline = tokio::time::Instant::now() + PAGE_PATIENCE;
        let mut last_error = None;
        loop {
            match check().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // Elements are replaced as the board re-renders; a stale one is worth another look.
                Err(e) => last_error = Some(e),
            }
            if tokio::time::Instant::now() > deadline {
                bail!("waited {PAGE_PATIENCE:?} for {what} (last error: {last_error:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `selector` satisfies `f`.
    pub async fn until_text(&self, selector: &str, what: &str, f: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        self.until(what, || async {
            let elements = self.all(selector).await?;
            for e in elements {
                if f(&e.text().await?) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    /// Waits until an attribute of `selector` satisfies `f`.
    pub async fn until_attr(
        &self,
        selector: &str,
        name: &str,
        what: &str,
        f: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        self.until(what, || async {
            let elements = self.all(selector).await?;
            for e in elements {
                if e.attr(name).await?.is_some_and(|v| f(&v)) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    /// Waits until the board has folded at least `seq`.
    pub async fn until_seq(&self, seq: u64) -> anyhow::Result<()> {
        self.until_attr("[data-test=board],[data-test=projector]", "data-seq", &format!("board at seq {seq}"), |v| {
            v.parse::<u64>().is_ok_and(|s| s >= seq)
        })
        .await
    }

    /// The folded board's sequence number as the page shows it.
    pub async fn seq(&self) -> anyhow::Result<u64> {
        let v = self.attr("[data-test=board],[data-test=projector]", "data-seq").await?;
        v.and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("no data-seq"))
    }

    /// The topic card whose text is `text`.
    pub async fn topic_id(&self, text: &str) -> anyhow::Result<String> {
        self.until_text("[data-test=topic-text]", &format!("topic {text:?}"), |t| t == text).await?;
        for card in self.all("[data-test=topic]").await? {
            let shown = card.find(css("[data-test=topic-text]")).await?.text().await?;
            if shown == text {
                return card.attr("data-topic-id").await?.ok_or_else(|| anyhow!("topic card without an id"));
            }
        }
        bail!("no topic {text:?}")
    }

    /// Says OK to the confirmation dialog the page opened, and returns its question.
    pub async fn confirm_dialog(&self) -> anyhow::Result<String> {
        let question = self.until_dialog().await?;
        self.web.accept_alert().await?;
        Ok(question)
    }

    async fn until_dialog(&self) -> anyhow::Result<String> {
        let deadline = std::time::Instant::now() + PAGE_PATIENCE;
        loop {
            if let Ok(text) = self.web.get_alert_text().await {
                return Ok(text);
            }
            if std::time::Instant::now() > deadline {
                bail!("no dialog opened within {PAGE_PATIENCE:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> anyhow::Result<String> {
        Ok(self.script("return document.body.innerText").await?.as_str().unwrap_or_default().to_owned())
    }

    /// Whether a JavaScript alert is open (it must never be).
    pub async fn alert_open(&self) -> bool {
        self.web.get_alert_text().await.is_ok()
    }

    pub async fn script(&self, js: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.web.execute(js, vec![]).await?)
    }

    pub async fn screenshot(&self, path: &std::path::Path) -> anyhow::Result<()> {
        std::fs::write(path, self.web.screenshot().await?)?;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.web.close().await;
    }
}
