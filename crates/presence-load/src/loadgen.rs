//! What the load generators share (presence-load, and rls-load through `#[path]`): keeping to
//! an offered rate, polling for a condition, and a TCP writer that sends whatever queued up
//! meanwhile in one write, as a SIP peer under load would.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// Waits until the `k`-th event of a schedule of `rate` per second starting at `start`.
pub async fn pace(start: Instant, k: u64, rate: f64) {
    let due = start + Duration::from_secs_f64(k as f64 / rate);
    tokio::time::sleep_until(due.into()).await;
}

/// Polls `done` every 10 ms until it holds or `limit` passes; whether it held.
pub async fn poll_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A queue whose messages a task writes to `writer`, everything queued at once in one write.
pub fn batched_writer(mut writer: OwnedWriteHalf) -> mpsc::UnboundedSender<Bytes> {
    let (queue, mut outgoing) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Some(first) = outgoing.recv().await {
            batch.clear();
            batch.extend_from_slice(&first);
            while let Ok(more) = outgoing.try_recv() {
                batch.extend_from_slice(&more);
            }
            if writer.write_all(&batch).await.is_err() {
                break;
            }
        }
    });
    queue
}
