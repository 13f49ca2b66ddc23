//! A one-way latch: set once by a background task, checked or awaited by the work it may stop.

use tokio::sync::watch;

/// The side that sets the latch.
pub struct Setter(watch::Sender<bool>);

impl Setter {
    pub fn set(&self) {
        let _ = self.0.send(true);
    }
}

/// The side that reads the latch; clones see the same latch.
#[derive(Clone)]
pub struct Latch(watch::Receiver<bool>);

/// A new latch, not set.
pub fn latch() -> (Setter, Latch) {
    let (sender, receiver) = watch::channel(false);
    (Setter(sender), Latch(receiver))
}

impl Latch {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the flag is set; never, if its setter is gone without setting it.
    pub async fn wait(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flag_is_seen_once_set_and_never_if_its_setter_goes() {
        let (setter, flag) = latch();
        assert!(!flag.is_set());
        setter.set();
        drop(setter);
        assert!(flag.is_set());
        flag.wait().await;

        let (setter, flag) = self::latch();
        drop(setter);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), flag.wait()).await;
        assert!(waited.is_err(), "a flag whose setter is gone is never set");
    }
}
