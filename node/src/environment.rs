//! How the node's tasks reach the machine: the wall clock and the blocking pool. A running node
//! uses the system clock and tokio's blocking threads; under the deterministic node simulator
//! (`sim`) the thread that runs every task reads a simulated clock (tokio's paused one) and does
//! blocking work inline, so that one seed gives one order of events.

use std::cell::{Cell, RefCell};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

/// Blocking work that could not finish (its task panicked or was cancelled).
#[derive(Debug, Clone, thiserror::Error)]
#[error("blocking task failed: {0}")]
pub struct BlockingError(pub String);

thread_local! {
    /// On the simulator's thread: the simulated wall clock at the start (ms) and the tokio
    /// instant it corresponds to.
    static SIMULATED: Cell<Option<(u64, tokio::time::Instant)>> = const { Cell::new(None) };
    /// On the simulator's thread: how long each piece of blocking work takes (simulated).
    static LATENCY: RefCell<Option<Box<dyn FnMut() -> Duration>>> = const { RefCell::new(None) };
}

/// Milliseconds since the Unix epoch: the system clock, or the simulated one on the
/// simulator's thread.
pub fn now_ms() -> u64 {
    if let Some((epoch_ms, start)) = SIMULATED.with(Cell::get) {
        return epoch_ms + start.elapsed().as_millis() as u64;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs blocking work (RocksDB, execution, signature batches) on tokio's blocking pool, or
/// inline on the simulator's thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BlockingError> {
    if simulated() {
        // The work takes its time: what it reads or writes happens when that time is over,
        // and other tasks run meanwhile (a read may pass a write begun before it).
        let latency = LATENCY.with(|l| l.borrow_mut().as_mut().map(|draw| draw()));
        if let Some(latency) = latency.filter(|l| !l.is_zero()) {
            tokio::time::sleep(latency).await;
        }
        // A panic fails the work, as on the blocking pool, instead of the whole run.
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .map_err(|_| BlockingError("blocking work panicked".into()));
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlockingError(e.to_string()))
}

/// Whether this thread runs under the simulator.
pub fn simulated() -> bool {
    SIMULATED.with(Cell::get).is_some()
}

/// Makes this thread the simulator's: from now on its wall clock starts at `epoch_ms` and
/// follows tokio's (paused) clock, and blocking work runs inline. Call inside the runtime.
#[cfg(any(test, feature = "sim"))]
pub fn simulate(epoch_ms: u64) {
    SIMULATED.with(|s| s.set(Some((epoch_ms, tokio::time::Instant::now()))));
}

/// Under [`simulate`], each piece of blocking work takes the simulated time `draw` gives
/// (none without one).
#[cfg(any(test, feature = "sim"))]
pub fn set_blocking_latency(draw: Option<Box<dyn FnMut() -> Duration>>) {
    LATENCY.with(|l| *l.borrow_mut() = draw);
}

/// Ends [`simulate`] on this thread.
#[cfg(any(test, feature = "sim"))]
pub fn stop_simulating() {
    SIMULATED.with(|s| s.set(None));
    set_blocking_latency(None);
}
