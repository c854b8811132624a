//! Servers that are not GWS get one plain line that says what was found and what to check:
//! a web server's HTML page is named, never echoed; TLS spoken to a plain-HTTP server and
//! plain HTTP to a TLS one each get their own hint.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{cmd, run, text, PASSWORD, USER};

const PAGE: &str = "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<title>Error response</title>\n\
    </head>\n<body>\n<h1>Error response</h1>\n<p>Error code: 404</p>\n</body>\n</html>\n";

/// A web server on 127.0.0.1:0 that answers every request with an HTML 404, or (with
/// `close`) reads the request and closes without answering, as a TLS server does when it
/// gets plain HTTP. Stops when the test's runtime ends.
async fn web_server(close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                if close {
                    return;
                }
                let reply = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

async fn watch(base: &str) -> (Option<i32>, String) {
    let out =
        run(cmd(&["watch", "--gws", base, "--user", USER]).env("GWS_PASSWORD", PASSWORD)).await;
    (out.status.code(), text(&out.stderr))
}

#[tokio::test]
async fn a_web_page_instead_of_gws_is_named_in_one_line_not_echoed() {
    let addr = web_server(false).await;
    let (code, err) = watch(&format!("http://{addr}/")).await;
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("HTTP 404: an HTML page titled \"Error response\"")
            && err.contains("a web server answered, not GWS: check the base URL and port"),
        "{err}"
    );
    assert!(!err.contains("<h1>"), "the page is not echoed: {err}");

    let out = run(&mut cmd(&[
        "tail",
        "--url",
        &format!("http://{addr}/cometd"),
    ]))
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("<h1>") && !err.contains("<html"), "{err}");
    assert!(
        err.lines().count() <= 4,
        "one line per attempt and the last: {err}"
    );
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("a web server answered, not GWS"),
        "{err}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_says_try_http() {
    let addr = web_server(false).await;
    let (code, err) = watch(&format!("https://{addr}")).await;
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("try http:// instead"), "{err}");
}

#[tokio::test]
async fn plain_http_to_a_server_that_closes_without_answering_says_try_https() {
    let addr = web_server(true).await;
    let (code, err) = watch(&format!("http://{addr}")).await;
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("if it speaks TLS, try https://"), "{err}");
}
