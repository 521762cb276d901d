//! Self-test of the WebDriver harness (tests/support/webdriver.rs) against a tiny page served
//! from a hand-written HTTP server, so a harness bug is not mistaken for an app bug.
//! Needs Chromium and chromedriver: `sudo apt-get install chromium chromium-driver`.

use crate::support::webdriver;

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use webdriver::Browser;

/// A form whose submit handler greets the typed name after a short delay, so the test has to
/// wait for the change rather than read it immediately. The `data:` icon stops Chromium asking
/// for /favicon.ico, whose 404 would show up in the console log.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Harness page</title><link rel="icon" href="data:,"></head>
<body>
  <form id="greet">
    <label for="name">Name</label>
    <input id="name" name="name" value="placeholder">
    <button id="go" type="submit">Greet</button>
  </form>
  <p id="out">Waiting</p>
  <p id="hidden" style="display:none">Invisible</p>
  <script>
    document.getElementById("greet").addEventListener("submit", function (event) {
      event.preventDefault();
      var name = document.getElementById("name").value;
      setTimeout(function () {
        document.getElementById("out").textContent = "Hello, " + name + "!";
      }, 150);
    });
  </script>
</body>
</html>"#;

/// Serves `PAGE` at `/` (with a cookie) and 404 elsewhere on 127.0.0.1:0; returns the base URL.
async fn spawn_page_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // Read the request head; the page only issues GETs, so there is no body.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let request_line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let response = if request_line.starts_with("GET / ") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Set-Cookie: harness=baked; Path=/; HttpOnly; SameSite=Strict\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                        PAGE.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn launch() -> Browser {
    Browser::launch()
        .await
        .unwrap_or_else(|e| panic!("cannot start the browser: {e}"))
}

#[tokio::test]
async fn a_user_can_fill_a_form_click_and_see_the_page_change() {
    // Arrange
    let base = spawn_page_server().await;
    let browser = launch().await;

    // Act: navigate
    browser.goto(&format!("{base}/")).await;

    // Assert: the page and its metadata are as served
    assert_eq!(browser.current_url().await, format!("{base}/"));
    assert_eq!(browser.title().await, "Harness page");
    assert!(browser
        .page_source()
        .await
        .contains(r#"<p id="out">Waiting</p>"#));
    assert_eq!(browser.find_all("input").await.len(), 1);
    assert!(browser.try_find("#does-not-exist").await.is_none());
    assert!(browser.find("#out").await.is_displayed().await);
    assert!(!browser.find("#hidden").await.is_displayed().await);
    let viewport = browser
        .execute("return [window.outerWidth, window.outerHeight];", vec![])
        .await;
    assert_eq!(viewport, serde_json::json!([1280, 900]), "window size");

    // Act: fill the input and submit
    let input = browser.find("#name").await;
    assert_eq!(input.attr("name").await.as_deref(), Some("name"));
    assert_eq!(input.attr("placeholder").await, None);
    input.clear().await;
    input.send_keys("Ada").await;
    assert_eq!(input.property("value").await, "Ada");
    browser.find("#go").await.click().await;

    // Assert: the text changes once the page's timer fires
    let out = browser
        .wait_for_text("#out", "Hello, Ada!", Duration::from_secs(5))
        .await;
    assert_eq!(out.text().await, "Hello, Ada!");
    let echoed = browser
        .execute("return arguments[0].id;", vec![out.as_arg()])
        .await;
    assert_eq!(echoed, "out");

    // The page logged nothing; a console error is reported with its level
    assert_eq!(
        browser.console_logs().await,
        Vec::<serde_json::Value>::new()
    );
    browser
        .execute("console.error('harness-boom');", vec![])
        .await;
    let logs = browser.console_logs().await;
    assert!(
        logs.iter().any(|l| l["level"] == "SEVERE"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("harness-boom"))),
        "{logs:?}"
    );

    // Cookies set by the server are visible, flags included
    let cookie = browser
        .cookie("harness")
        .await
        .expect("the harness cookie is set");
    assert_eq!(cookie.value, "baked");
    assert!(cookie.http_only);
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"));

    // Screenshots are PNGs, and can be saved for a human to look at
    let png = browser.screenshot_png().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG magic bytes");
    let saved = browser.save_screenshot("harness/after greeting").await;
    assert!(saved.ends_with("browser-screenshots/harness_after_greeting.png"));
    let on_disk = std::fs::read(&saved).expect("screenshot written");
    assert!(on_disk.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn wait_for_finds_an_element_added_later_and_wait_for_gone_sees_it_removed() {
    let base = spawn_page_server().await;
    let browser = launch().await;
    browser.goto(&format!("{base}/")).await;

    browser
        .execute(
            "setTimeout(function () { var p = document.createElement('p'); p.id = 'late'; \
             p.textContent = 'Arrived'; document.body.appendChild(p); }, 200);",
            vec![],
        )
        .await;

    assert!(browser.try_find("#late").await.is_none());
    let late = browser.wait_for("#late", Duration::from_secs(5)).await;
    assert_eq!(late.text().await, "Arrived");

    browser
        .execute(
            "setTimeout(function () { document.getElementById('late').remove(); }, 200);",
            vec![],
        )
        .await;
    assert!(browser.try_find("#late").await.is_some());
    browser.wait_for_gone("#late", Duration::from_secs(5)).await;
    assert!(browser.try_find("#late").await.is_none());
}

#[tokio::test]
async fn a_missing_chromedriver_explains_how_to_install_it() {
    let missing = Path::new("/nonexistent/chromedriver");

    let err = match Browser::launch_with(missing, Path::new("/usr/bin/chromium")).await {
        Ok(_) => panic!("launching a missing chromedriver must fail"),
        Err(e) => e,
    };

    assert!(err.contains("/nonexistent/chromedriver"), "{err}");
    assert!(
        err.contains("sudo apt-get install chromium chromium-driver"),
        "{err}"
    );
}
