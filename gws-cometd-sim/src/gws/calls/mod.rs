//! The simulated calls: states and their capabilities, the user-data operations, and the
//! calls' JSON as notifications and REST replies show it.
//!
//! | module | what it holds |
//! |---|---|
//! | `state` | a call's state, its capabilities and whether it takes user data |
//! | `new_call` | a call to start: its type and its two parties |
//! | `lifecycle` | starting calls and moving them through their states |
//! | `user_data` | the user-data operations and pair lists read in order |
//! | `listing` | the calls as REST replies list them |
//! | `render` | a call's JSON text and its `CallStateChangeMessage` |
//! | `render_v3` | the same call as the Workspace API v3 shows it, and its `CallStateChanged` |
//! | `kvlist` | user data as a v3 KVList, both ways |

mod kvlist;
mod lifecycle;
mod listing;
mod new_call;
mod render;
mod render_v3;
mod state;
mod user_data;

#[cfg(test)]
mod tests;

use std::time::SystemTime;

use tokio::time::Instant;

pub(in crate::gws) use kvlist::from_kvlist;
pub use new_call::{NewCall, SimCallType};
pub(in crate::gws) use render_v3::with_operation_id;
pub use state::SimCallState;
pub(in crate::gws) use user_data::Pairs;
pub use user_data::RawPairs;

/// How many completed calls are remembered (so late operations on them answer
/// `statusCode` 2 rather than 6); older ones are forgotten.
const COMPLETED_CALLS_KEPT: usize = 100;

/// Why a call operation of the simulator was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimCallError {
    /// No call has this id.
    #[error("call {0} not found")]
    NotFound(String),
    /// The call's state does not allow the operation.
    #[error("call {id} is {state}: {operation} is not allowed")]
    InvalidState {
        /// The call.
        id: String,
        /// Its state.
        state: SimCallState,
        /// The refused operation.
        operation: &'static str,
    },
}

struct SimCall {
    id: String,
    call_uuid: String,
    /// The user whose calls list shows it and who gets its notifications.
    owner: String,
    conn_id: String,
    state: SimCallState,
    call: NewCall,
    user_data: RawPairs,
    started: Instant,
    /// The wall-clock time of `started`, taken once: v3's `startedAt` computed from the
    /// clock at each rendering could differ by a millisecond between two of them.
    started_at: SystemTime,
}

/// Every call the simulator knows, oldest first.
#[derive(Default)]
pub(super) struct Calls {
    list: Vec<SimCall>,
    rung: u64,
}

impl Calls {
    fn find(&mut self, id: &str) -> Result<&mut SimCall, SimCallError> {
        self.list
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| SimCallError::NotFound(id.to_owned()))
    }

    fn prune_completed(&mut self) {
        let completed = self
            .list
            .iter()
            .filter(|c| c.state == SimCallState::Completed)
            .count();
        let mut excess = completed.saturating_sub(COMPLETED_CALLS_KEPT);
        self.list.retain(|c| {
            if excess > 0 && c.state == SimCallState::Completed {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    /// The calls not `Completed` that `keep` selects.
    fn live(&self, keep: impl Fn(&SimCall) -> bool) -> impl Iterator<Item = &SimCall> {
        self.list
            .iter()
            .filter(move |c| c.state != SimCallState::Completed && keep(c))
    }
}
