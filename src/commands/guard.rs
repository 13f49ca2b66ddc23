//! What can stop work under the release lock, Ctrl-C or the loss of the lock, and what the
//! work came to.

use crate::error::{Error, Problem};
use crate::kube::{self, KubeError};

/// What can stop work under the release lock: Ctrl-C, listened for from the moment the lock is
/// held (so the signal is noticed and handled rather than ending the process with the Lease
/// still held; a second one ends it at once), and the loss of the lock.
pub struct Guard {
    interrupted: kube::Latch,
    lost: kube::Latch,
}

impl Guard {
    /// Starts listening for Ctrl-C. Call it once the lock is held: before that (say while waiting
    /// for the lock) Ctrl-C should end the process at once, as usual.
    pub fn new(lock: &kube::Lock) -> Self {
        let (setter, interrupted) = kube::latch();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                setter.set();
                // A second Ctrl-C does not wait for the phase to be recorded: the one exit deep
                // in the code, as the user asked for it twice.
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        Self {
            interrupted,
            lost: lock.loss(),
        }
    }

    /// Refuses to go on if Ctrl-C came before the first write: nothing to record then.
    pub fn check(&self, command: &str) -> Result<(), Error> {
        if self.interrupted.is_set() {
            return Err(Error::Interrupted {
                problem: Problem::new(format!("interrupted: {command} stopped before any write"))
                    .because("nothing was changed")
                    .hint("run the same command again"),
            });
        }
        Ok(())
    }

    /// Runs `work` unless Ctrl-C comes first or the lock is lost; then the work is dropped, so
    /// no new write starts. What it came to is [`Settled`]: done, or a failure whose phase the
    /// caller records; a lost lock is returned as the error, since the release's record is
    /// another run's to write now.
    pub async fn run<T>(
        &self,
        command: &str,
        release: &str,
        work: impl std::future::Future<Output = Result<T, KubeError>>,
    ) -> Result<Settled<T>, Error> {
        let outcome = tokio::select! {
            biased;
            // If no Ctrl-C handler could be installed, the latch is never set and Ctrl-C ends
            // the process as usual.
            () = self.interrupted.wait() => Err(Stopped::Interrupted),
            () = self.lost.wait() => Err(Stopped::LockLost),
            result = work => Ok(result),
        };
        match outcome {
            Ok(Ok(done)) => Ok(Settled::Done(done)),
            Ok(Err(err)) => Ok(Settled::Failed(err.into())),
            Err(Stopped::LockLost) => Err(KubeError::LockLost {
                release: release.to_owned(),
            }
            .into()),
            Err(Stopped::Interrupted) => Ok(Settled::Failed(Error::Interrupted {
                problem: Problem::new(format!("interrupted: {command} stopped before it finished"))
                    .because("no new writes were started; the release's phase was recorded")
                    .hint("run the same command again to converge"),
            })),
        }
    }
}

/// Why work under the lock stopped before it finished.
enum Stopped {
    /// Ctrl-C.
    Interrupted,
    /// The lock went to another run (or expired); the release is no longer this run's to write.
    LockLost,
}

/// What work under the lock came to, when the release is still this run's.
pub enum Settled<T> {
    Done(T),
    /// It failed or was interrupted: the caller records the release's phase, then returns this.
    Failed(Error),
}
