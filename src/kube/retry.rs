//! Retries idempotent calls on transient failures (429, 5xx, dropped connections) with backoff.

use std::future::Future;
use std::time::Duration;

/// How many times a call is tried in all.
pub const ATTEMPTS: u32 = 6;

/// Whether an error is worth another try.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or has been tried [`ATTEMPTS`] times.
/// Backoff doubles from 100 ms, capped at 2 s. Only for idempotent calls (GET, LIST, SSA, DELETE).
pub async fn retry<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(err) if attempt < ATTEMPTS && is_transient(&err) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            result => return result,
        }
    }
}
