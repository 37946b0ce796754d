//! The response body: either a whole buffer (sent with `content-length`) or a stream of
//! frames fed by a task through a channel (sent chunked, one chunk per frame). A stream item
//! that is an `Err` makes hyper abort the connection without the terminating chunk.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

pub enum MockBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, io::Error>>),
}

impl MockBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(b.into()))
    }

    pub fn empty() -> Self {
        MockBody::Full(None)
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// How a streamed answer should behave (from the `[mock:...]` controls).
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamPlan {
    pub delay_ms: u64,
    /// After this many content frames, abort the connection.
    pub cut_after: Option<usize>,
    /// After this many content frames, end the body cleanly without the final frames.
    pub truncate_after: Option<usize>,
}

/// Streams `head`, then `content`, then `tail` frames, sleeping `delay_ms` between frames.
pub fn spawn_stream(
    head: Vec<Bytes>,
    content: Vec<Bytes>,
    tail: Vec<Bytes>,
    plan: StreamPlan,
) -> MockBody {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(1);
    tokio::spawn(async move {
        let delay = Duration::from_millis(plan.delay_ms);
        let mut first = true;
        let send = |b: Bytes, first: &mut bool| {
            let tx = tx.clone();
            let wait = !*first && !delay.is_zero();
            *first = false;
            async move {
                if wait {
                    tokio::time::sleep(delay).await;
                }
                tx.send(Ok(b)).await.is_ok()
            }
        };
        for b in head {
            if !send(b, &mut first).await {
                return;
            }
        }
        for (i, b) in content.into_iter().enumerate() {
            if plan.cut_after == Some(i) {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let _ = tx.send(Err(io::Error::other("mock: cut_after"))).await;
                return;
            }
            if plan.truncate_after == Some(i) {
                return;
            }
            if !send(b, &mut first).await {
                return;
            }
        }
        if plan.cut_after.is_some() {
            // Fewer content frames than cut_after: still cut before the final frames.
            let _ = tx.send(Err(io::Error::other("mock: cut_after"))).await;
            return;
        }
        if plan.truncate_after.is_some() {
            return;
        }
        for b in tail {
            if !send(b, &mut first).await {
                return;
            }
        }
    });
    MockBody::Stream(rx)
}
