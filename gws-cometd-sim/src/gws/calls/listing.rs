//! The calls as the REST replies list them: one call, every live call, their ids, and who
//! owns which.

use super::SimCall;
use crate::gws::GwsSim;

impl GwsSim {
    /// The call's JSON text, as notifications and `GET /api/v2/me/calls` show it.
    pub fn call_json(&self, id: &str) -> Option<String> {
        let state = self.state();
        let call = state.calls.list.iter().find(|c| c.id == id)?;
        Some(call.json(&self.inner.config))
    }

    /// Every call not `Completed`, of every user, as `GET /api/v2/me/calls` shows them.
    pub fn calls_json(&self) -> String {
        self.calls_json_where(|_| true)
    }

    /// The `GET /api/v2/me/calls` reply for `user`: their calls not `Completed`.
    pub fn calls_json_for(&self, user: &str) -> String {
        self.calls_json_where(|c| c.owner == user)
    }

    fn calls_json_where(&self, keep: impl Fn(&SimCall) -> bool) -> String {
        let state = self.state();
        let mut out = String::from(r#"{"statusCode":0,"calls":["#);
        for (i, call) in state.calls.live(keep).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&call.json(&self.inner.config));
        }
        out.push_str("]}");
        out
    }

    /// `user`'s calls not `Completed` in the Workspace API v3 form, as a JSON array: what
    /// `GET /workspace/v3/current-session` lists in `data.user.activeSession.calls`.
    pub fn calls_v3_for(&self, user: &str) -> String {
        let state = self.state();
        let calls: Vec<String> = state
            .calls
            .live(|c| c.owner == user)
            .map(SimCall::json_v3)
            .collect();
        format!("[{}]", calls.join(","))
    }

    /// The ids of every call not `Completed`, of every user, oldest first.
    pub fn call_ids(&self) -> Vec<String> {
        self.call_ids_where(|_| true)
    }

    /// The ids of `user`'s calls not `Completed`, oldest first.
    pub fn call_ids_for(&self, user: &str) -> Vec<String> {
        self.call_ids_where(|c| c.owner == user)
    }

    fn call_ids_where(&self, keep: impl Fn(&SimCall) -> bool) -> Vec<String> {
        let state = self.state();
        state.calls.live(keep).map(|c| c.id.clone()).collect()
    }

    /// Whether call `id` exists and is `user`'s.
    pub(in crate::gws) fn owns(&self, user: &str, id: &str) -> bool {
        self.state()
            .calls
            .list
            .iter()
            .any(|c| c.id == id && c.owner == user)
    }
}
