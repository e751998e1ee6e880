//! Streams of committed blocks and contract events that survive a broken connection: each is
//! opened again from its checkpoint (the next height; the last event's height and position),
//! so no block or event is skipped or delivered twice, whatever the node or network did.

use std::time::{Duration, Instant};

use quorate_proto::crypto::Address;
use quorate_proto::v1::{BlockInfo, EventRecord, StreamBlocksRequest, StreamEventsRequest};
use tonic::Streaming;

use crate::error::ClientError;
use crate::node::Node;

/// How long a stream tries to reach its node again before it gives up, unless told otherwise.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// The first pause before opening a broken stream again; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two attempts to open a broken stream again.
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// Where an event stream stands: the last event delivered, by its height and its position in
/// that block (transaction index, event index). Save it; a stream opened from it delivers
/// exactly the events after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    /// Height of the last event delivered (0: none yet).
    pub height: u64,
    /// Its transaction's position in the block.
    pub tx_index: u32,
    /// Its position in the transaction's receipt.
    pub event_index: u32,
}

impl Checkpoint {
    /// The checkpoint of `event`: a stream from it starts after `event`.
    pub fn of(event: &EventRecord) -> Self {
        Self {
            height: event.height,
            tx_index: event.tx_index,
            event_index: event.event_index,
        }
    }

    /// The checkpoint before every event of `height` and above.
    pub fn before_height(height: u64) -> Self {
        Self {
            height: height.saturating_sub(1),
            tx_index: u32::MAX,
            event_index: u32::MAX,
        }
    }

    /// The first height a stream after this checkpoint asks for: the checkpoint's own block
    /// (events of it after the checkpoint may not have been delivered), or the next one when
    /// nothing of its block is left (a node that no longer holds that block is not asked for
    /// it).
    pub fn resume_height(&self) -> u64 {
        if (self.tx_index, self.event_index) == (u32::MAX, u32::MAX) {
            self.height + 1
        } else {
            self.height.max(1)
        }
    }
}

/// What is done with a broken stream: open it again, pausing longer each time, until
/// `give_up_after` has passed without the node.
#[derive(Debug)]
struct Reopen {
    give_up_after: Duration,
    broken_since: Option<Instant>,
    pause: Duration,
    /// When the stream was last opened.
    opened: Option<Instant>,
}

/// A stream that stayed open this long before it broke counts as having worked.
const STABLE_AFTER: Duration = Duration::from_secs(5);

impl Reopen {
    fn new(give_up_after: Duration) -> Self {
        Self {
            give_up_after,
            broken_since: None,
            pause: FIRST_PAUSE,
            opened: None,
        }
    }

    /// Something arrived: the stream works.
    fn healed(&mut self) {
        self.broken_since = None;
        self.pause = FIRST_PAUSE;
    }

    /// The stream broke with `error`: pauses before the next attempt, or gives the error back
    /// when it is not a broken connection or the node has been away too long.
    async fn after(&mut self, error: ClientError) -> Result<(), ClientError> {
        if !recoverable(&error) {
            return Err(error);
        }
        if self
            .opened
            .take()
            .is_some_and(|t| t.elapsed() >= STABLE_AFTER)
        {
            // The stream worked a while before this break: a new break, not the same one.
            self.healed();
        }
        let since = *self.broken_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.give_up_after {
            return Err(error);
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        Ok(())
    }
}

/// Whether a stream that failed with `error` is worth opening again: the connection broke, the
/// node restarted or ended the stream, or the call ran into its time limit.
fn recoverable(error: &ClientError) -> bool {
    match error {
        ClientError::Unreachable { .. } => true,
        ClientError::Rpc { code, .. } => matches!(
            code,
            tonic::Code::Unavailable
                | tonic::Code::Cancelled
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::Aborted
        ),
        _ => false,
    }
}

/// Every committed block from a height on, in order, each exactly once, for as long as it is
/// read: [`Node::blocks`].
#[derive(Debug)]
pub struct BlockStream {
    node: Node,
    next_height: u64,
    include_transactions: bool,
    open: Option<Streaming<BlockInfo>>,
    reopen: Reopen,
}

impl BlockStream {
    pub(crate) fn new(node: Node, from_height: u64, include_transactions: bool) -> Self {
        Self {
            node,
            next_height: from_height.max(1),
            include_transactions,
            open: None,
            reopen: Reopen::new(GIVE_UP_AFTER),
        }
    }

    /// Gives up after `limit` without the node (default [`GIVE_UP_AFTER`]).
    pub fn give_up_after(mut self, limit: Duration) -> Self {
        self.reopen.give_up_after = limit;
        self
    }

    /// The height of the next block this stream delivers: its checkpoint.
    pub fn next_height(&self) -> u64 {
        self.next_height
    }

    /// The next block. Waits for it to be committed; opens the stream again from the next
    /// height when it breaks. [`ClientError::Unreachable`] once the node has been away for the
    /// time given; [`ClientError::BadAnswer`] if the node sends another height than the next.
    pub async fn next(&mut self) -> Result<BlockInfo, ClientError> {
        loop {
            match self.try_next().await {
                Ok(block) => {
                    self.reopen.healed();
                    return Ok(block);
                }
                Err(e) => {
                    self.open = None;
                    self.reopen.after(e).await?;
                }
            }
        }
    }

    async fn try_next(&mut self) -> Result<BlockInfo, ClientError> {
        if self.open.is_none() {
            let stream = self
                .node
                .chain()
                .stream_blocks(StreamBlocksRequest {
                    from_height: self.next_height,
                    include_transactions: self.include_transactions,
                })
                .await
                .map_err(|s| self.node.error("stream blocks", s))?
                .into_inner();
            self.open = Some(stream);
            self.reopen.opened = Some(Instant::now());
        }
        let stream = self.open.as_mut().expect("opened above");
        let block = stream
            .message()
            .await
            .map_err(|s| self.node.error("stream blocks", s))?
            // A node that shuts down ends its streams: treated as a break.
            .ok_or_else(|| ended(&self.node, "blocks"))?;
        let height = block.header.as_ref().map_or(0, |h| h.height);
        if height != self.next_height {
            return Err(ClientError::BadAnswer {
                what: "stream blocks",
                why: format!(
                    "expected height {}, the node sent {height}",
                    self.next_height
                ),
            });
        }
        self.next_height += 1;
        Ok(block)
    }
}

/// A stream the node ended: what a restarting node does to its streams.
fn ended(node: &Node, what: &str) -> ClientError {
    ClientError::Unreachable {
        url: node.url().to_owned(),
        cause: format!("the node ended the {what} stream"),
        fix: "the node may be restarting; the stream is opened again from its checkpoint",
    }
}

/// Which events an [`EventStream`] delivers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this contract's events.
    pub contract: Option<Address>,
    /// Only events of this kind.
    pub kind: Option<String>,
}

/// Every contract event after a checkpoint, in chain order, each exactly once, for as long as
/// it is read: [`Node::events`].
#[derive(Debug)]
pub struct EventStream {
    node: Node,
    filter: EventFilter,
    checkpoint: Checkpoint,
    open: Option<Streaming<EventRecord>>,
    reopen: Reopen,
}

impl EventStream {
    pub(crate) fn new(node: Node, filter: EventFilter, after: Checkpoint) -> Self {
        Self {
            node,
            filter,
            checkpoint: after,
            open: None,
            reopen: Reopen::new(GIVE_UP_AFTER),
        }
    }

    /// Gives up after `limit` without the node (default [`GIVE_UP_AFTER`]).
    pub fn give_up_after(mut self, limit: Duration) -> Self {
        self.reopen.give_up_after = limit;
        self
    }

    /// The last event delivered (or the checkpoint the stream started after): save it to go on
    /// later from there.
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint
    }

    /// The next event. Waits for it; opens the stream again after the checkpoint when it
    /// breaks. [`ClientError::Unreachable`] once the node has been away for the time given;
    /// [`ClientError::BadAnswer`] if the node sends events out of order.
    pub async fn next(&mut self) -> Result<EventRecord, ClientError> {
        loop {
            match self.try_next().await {
                Ok(event) => {
                    self.reopen.healed();
                    return Ok(event);
                }
                Err(e) => {
                    self.open = None;
                    self.reopen.after(e).await?;
                }
            }
        }
    }

    async fn try_next(&mut self) -> Result<EventRecord, ClientError> {
        if self.open.is_none() {
            let stream = self
                .node
                .contracts()
                .stream_events(StreamEventsRequest {
                    from_height: self.checkpoint.resume_height(),
                    contract: self
                        .filter
                        .contract
                        .map(|a| bytes::Bytes::copy_from_slice(&a.0))
                        .unwrap_or_default(),
                    kind: self.filter.kind.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| self.node.error("stream events", s))?
                .into_inner();
            self.open = Some(stream);
            self.reopen.opened = Some(Instant::now());
        }
        loop {
            let stream = self.open.as_mut().expect("opened above");
            let event = stream
                .message()
                .await
                .map_err(|s| self.node.error("stream events", s))?
                .ok_or_else(|| ended(&self.node, "events"))?;
            let at = Checkpoint::of(&event);
            if at <= self.checkpoint {
                // Delivered before the stream was opened again, or the checkpoint's own.
                if at.height < self.checkpoint.resume_height() {
                    return Err(ClientError::BadAnswer {
                        what: "stream events",
                        why: format!(
                            "asked from height {}, the node sent an event of height {}",
                            self.checkpoint.resume_height(),
                            at.height
                        ),
                    });
                }
                continue;
            }
            self.checkpoint = at;
            return Ok(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream goes on from the checkpoint's block when events of it may remain, from the
    /// next block when none can (asking a pruned node for a block it dropped would fail).
    #[test]
    fn a_stream_resumes_from_the_first_height_that_may_hold_what_is_left() {
        assert_eq!(Checkpoint::default().resume_height(), 1);
        assert_eq!(Checkpoint::before_height(1).resume_height(), 1);
        assert_eq!(Checkpoint::before_height(50).resume_height(), 50);
        let mid = Checkpoint {
            height: 49,
            tx_index: 3,
            event_index: 0,
        };
        assert_eq!(mid.resume_height(), 49);
    }
}
