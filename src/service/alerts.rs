//! Outgoing alerts: one JSON POST with a Slack-compatible `text` field to the configured
//! webhook, retried with backoff. One HTTP client for every alert.

use std::time::Duration;

use serde_json::json;

#[derive(Clone)]
pub struct Alerts {
    url: Option<String>,
    client: reqwest::Client,
}

impl Alerts {
    pub fn new(url: Option<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // The webhook is someone else's; never let it bounce the post elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { url, client })
    }

    /// Sends in the background (0.5 s, 1 s, 2 s between attempts); a no-op without a URL.
    ///
    /// An alert is plain text. Slack reads `<…>` as links and mentions (`<!channel>`) and `&`
    /// as the start of an entity, and an alert holds what people and the organization named
    /// (a key's name, a request's reason), so the whole text is escaped here, once, for every
    /// alert: nothing in one can ping a channel or disguise a link.
    pub fn send(&self, text: String) {
        let Some(url) = self.url.clone() else {
            return;
        };
        let text = slack_plain(&text);
        let client = self.client.clone();
        tokio::spawn(async move {
            for attempt in 0..4u32 {
                match client
                    .post(&url)
                    .json(&json!({ "text": text }))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!(status = %r.status(), attempt, "alert webhook refused"),
                    Err(error) => tracing::warn!(%error, attempt, "alert webhook failed"),
                }
                if attempt < 3 {
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
            }
            tracing::error!("alert webhook gave up after 4 attempts");
        });
    }
}

/// Text with Slack's three control characters escaped (api.slack.com, "Escaping text").
pub fn slack_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_in_alert_text_is_escaped() {
        assert_eq!(
            slack_plain("<!channel> please <http://evil.example|approve here> & thanks"),
            "&lt;!channel&gt; please &lt;http://evil.example|approve here&gt; &amp; thanks"
        );
    }
}
