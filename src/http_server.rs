//! A small HTTP/1.1 serve loop on hyper (feature `server`, off by default): the one the
//! workspace's simulator and the bridge's `/metrics` endpoint run on. A service that only
//! follows calls never needs it.
//!
//! [`serve`] accepts connections until `shutdown` turns true, runs each on a task of its
//! own, and then gives open connections a grace period to finish the reply in progress
//! before it aborts them. Each request comes with its [`Connection`], which a handler can
//! tell to close after the reply in progress (the simulator's "close after reply" fault).
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::Response;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (listener, addr) = gws_cometd::http_server::bind("127.0.0.1:0".parse().unwrap()).await?;
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let server = tokio::spawn(gws_cometd::http_server::serve(
//!     listener,
//!     shutdown,
//!     Duration::from_secs(1),
//!     |_req, _conn| async { Response::new(Full::new(Bytes::from_static(b"ok\n"))) },
//! ));
//! # let _ = addr;
//! stop.send(true).ok();
//! server.await.ok();
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// How long the loop pauses after a failed accept (typically out of file descriptors),
/// instead of spinning.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// One accepted connection, as its requests' handler sees it.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    close: Arc<Notify>,
}

impl Connection {
    /// Closes the connection once the reply in progress is sent. hyper then closes it
    /// without adding a `Connection: close` header, as a misbehaving server would.
    pub fn close_after_reply(&self) {
        self.close.notify_one();
    }
}

/// Binds `addr`; also returns the bound address (the port, when `addr`'s is 0).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves `listener` with `handler` until `shutdown` turns true (or its sender is gone);
/// then waits at most `grace` for open connections to finish and aborts the rest.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    handler: H,
) where
    H: Fn(Request<Incoming>, Connection) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conns = JoinSet::new();
    while !*shutdown.borrow() {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    conns.spawn(serve_connection(stream, shutdown.clone(), handler.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            changed = shutdown.changed() => if changed.is_err() { break },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    // Dropping the JoinSet aborts whatever is still open.
}

/// Runs one connection until it ends, closing it gracefully (after the reply in progress)
/// when shutting down or when its handler asks.
async fn serve_connection<H, F, B>(
    stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>, Connection) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Small replies (a long poll's answer, a scrape) go out at once.
    let _ = stream.set_nodelay(true);
    let connection = Connection::default();
    let close = connection.close.clone();
    let svc = service_fn(move |req| {
        let reply = handler(req, connection.clone());
        async move { Ok::<_, Infallible>(reply.await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut stopping = *shutdown.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = close.notified() => conn.as_mut().graceful_shutdown(),
            changed = shutdown.changed(), if !stopping => {
                // A sender gone counts as a shutdown.
                stopping = changed.is_err() || *shutdown.borrow();
                if stopping {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(
        close_after: bool,
    ) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(serve(
            listener,
            shutdown,
            Duration::from_secs(1),
            move |req, conn: Connection| async move {
                if close_after {
                    conn.close_after_reply();
                }
                Response::new(Full::new(Bytes::from(req.uri().path().to_owned())))
            },
        ));
        (addr, stop, task)
    }

    /// Sends a GET of `path`; what comes back within `wait`, and whether the connection
    /// was closed then.
    async fn get(tcp: &mut TcpStream, path: &str, wait: Duration) -> (String, bool) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Err(_) => return (String::from_utf8_lossy(&out).into(), false),
            }
        }
    }

    #[tokio::test]
    async fn a_connection_serves_request_after_request() {
        let (addr, stop, task) = start(false).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let wait = Duration::from_millis(300);
        let (a, closed) = get(&mut tcp, "/a", wait).await;
        assert!(a.ends_with("/a") && !closed, "{a}");
        let (b, _) = get(&mut tcp, "/b", wait).await;
        assert!(b.ends_with("/b"), "{b}");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_told_to_close_ends_after_the_reply_in_progress() {
        let (addr, stop, task) = start(true).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let (a, closed) = get(&mut tcp, "/a", Duration::from_secs(2)).await;
        assert!(a.ends_with("/a") && closed, "{a}");
        assert!(!a.to_ascii_lowercase().contains("connection: close"), "{a}");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_ends_within_the_grace() {
        let (addr, stop, task) = start(false).await;
        // An idle keep-alive connection does not hold the shutdown up.
        let _idle = TcpStream::connect(addr).await.unwrap();
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
