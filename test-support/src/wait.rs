//! The one bounded wait of the tests: a step that does not finish in time fails the test,
//! naming what it waited for, instead of hanging the suite.

use std::future::Future;
use std::time::Duration;

/// `f`'s output, or a panic naming `what` once `limit` has passed on the tokio clock (which
/// a paused test advances by itself).
pub async fn within<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

/// Like [`within`], but `limit` is real time, kept by a std thread: for tests whose tokio
/// clock is paused and jumps whenever no task is ready, socket I/O in flight or not.
pub async fn within_real<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = tx.send(());
    });
    tokio::select! {
        biased;
        out = f => out,
        _ = rx => panic!("{what}: still running after {limit:?} of real time"),
    }
}
