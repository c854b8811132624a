//! [`Changes`]: a stream of Bayeux messages (live, or replayed from a fixture) turned into
//! the stream of changes they make to a [`CallStore`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;

use super::{CallChange, CallStore};
use crate::bayeux::Message;
use crate::gws::wire::{self, Notification};
use crate::Error;

impl CallStore {
    /// Turns a stream of Bayeux messages (or of `Result`s of them, as
    /// [`crate::fixture::read`] yields) into a stream of the changes they make. Messages that
    /// are not call notifications (v2's on `/v2/me/calls`, v3's on `/workspace/v3/voice`) are
    /// skipped.
    pub fn changes<S>(self, messages: S) -> Changes<S>
    where
        S: Stream + Unpin,
        S::Item: MessageItem,
    {
        Changes {
            store: self,
            inner: messages,
        }
    }
}

/// An item [`CallStore::changes`] accepts: a [`Message`], or a `Result` of one.
pub trait MessageItem {
    /// The message, or the error that took its place.
    fn into_message(self) -> Result<Message, Error>;
}

impl MessageItem for Message {
    fn into_message(self) -> Result<Message, Error> {
        Ok(self)
    }
}

impl MessageItem for Result<Message, Error> {
    fn into_message(self) -> Result<Message, Error> {
        self
    }
}

/// The stream [`CallStore::changes`] returns. Errors of the inner stream pass through; a
/// call notification that does not fit the model yields [`Error::Notification`] and the
/// stream goes on.
pub struct Changes<S> {
    store: CallStore,
    inner: S,
}

impl<S> Changes<S> {
    /// The store as it is now.
    pub fn store(&self) -> &CallStore {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> CallStore {
        self.store
    }
}

impl<S> Stream for Changes<S>
where
    S: Stream + Unpin,
    S::Item: MessageItem,
{
    type Item = Result<CallChange, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let item = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let msg = match item.into_message() {
                Ok(m) => m,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            match wire::decode(&msg) {
                Ok(Notification::Call(call)) => {
                    if let Some(mut applied) = this.store.apply(&call, Instant::now()) {
                        return Poll::Ready(Some(Ok(applied.change())));
                    }
                }
                Ok(_) => {}
                Err(source) => {
                    return Poll::Ready(Some(Err(Error::Notification {
                        channel: msg.channel,
                        source,
                    })))
                }
            }
        }
    }
}
