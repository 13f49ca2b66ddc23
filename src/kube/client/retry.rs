//! Retries idempotent calls on transient failures (429, 5xx, dropped connections) with backoff.

use std::future::Future;
use std::time::Duration;

pub use crate::kube::error::{ATTEMPTS, is_transient};

/// The longest wait a server's `retryAfterSeconds` can ask for between two attempts.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(10);

/// How long the server asked to wait (`details.retryAfterSeconds` of a throttling answer).
fn server_delay(err: &kube::Error) -> Option<Duration> {
    let kube::Error::Api(status) = err else {
        return None;
    };
    let seconds = status.details.as_ref()?.retry_after_seconds;
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)).min(MAX_SERVER_DELAY))
}

/// Runs `call` until it succeeds, fails for good, or has been tried [`ATTEMPTS`] times.
/// Backoff doubles from 100 ms, capped at 2 s, and is stretched to what the server asks for
/// (up to 10 s). Only for idempotent calls (GET, LIST, SSA, DELETE).
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
                tokio::time::sleep(server_delay(&err).map_or(delay, |asked| asked.max(delay)))
                    .await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::core::response::StatusDetails;
    use std::cell::Cell;
    use tokio::time::Instant;

    fn api_error(code: u16, retry_after_seconds: u32) -> kube::Error {
        let details = StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes: Vec::new(),
            retry_after_seconds,
        };
        kube::Error::Api(
            Status::failure("throttled", "TooManyRequests")
                .with_code(code)
                .with_details(details)
                .boxed(),
        )
    }

    /// Runs `retry` over calls that fail with `errors` (then succeed) on a paused clock, and
    /// returns the attempts made, the virtual time spent and whether it succeeded.
    async fn run(errors: Vec<kube::Error>) -> (u32, Duration, bool) {
        let errors = std::cell::RefCell::new(errors.into_iter());
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = retry(|| {
            calls.set(calls.get() + 1);
            let next = errors.borrow_mut().next();
            async move { next.map_or(Ok(()), Err) }
        })
        .await;
        (calls.get(), start.elapsed(), result.is_ok())
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_gives_up_after_six_attempts() {
        let (calls, waited, ok) = run((0..10).map(|_| api_error(503, 0)).collect()).await;
        assert_eq!((calls, ok), (6, false));
        // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s between the six attempts.
        assert_eq!(waited, Duration::from_millis(3100));
    }

    #[tokio::test(start_paused = true)]
    async fn the_server_can_ask_for_a_longer_wait_up_to_a_cap() {
        let (calls, waited, ok) = run(vec![api_error(429, 3), api_error(429, 600)]).await;
        assert_eq!((calls, ok), (3, true));
        assert_eq!(waited, Duration::from_secs(3) + MAX_SERVER_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let (calls, waited, ok) = run(vec![api_error(409, 0)]).await;
        assert_eq!((calls, waited, ok), (1, Duration::ZERO, false));
    }
}
