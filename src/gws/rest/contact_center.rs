//! The agent's side of GWS beyond calls: devices, and the contact-center session
//! (`StartContactCenterSession` logs the agent in on its channels; a passive observer never
//! sends it, and never `EndContactCenterSession`, which logs the agent out).

use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{judge, GwsSession, GwsStatus, RestError, Result, StatusFields};
use crate::json::quote;

const OP_GET_DEVICES: &str = "GetDevices";
const OP_START: &str = "StartContactCenterSession";
const OP_END: &str = "EndContactCenterSession";

/// How one channel of a `StartContactCenterSession` fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The channel (`voice`, ...).
    pub channel: String,
    /// Its `statusCode` (0 is success).
    pub status_code: i64,
    /// The server's `statusMessage`, if any.
    pub message: Option<String>,
}

/// The answer to `StartContactCenterSession`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactCenterSession {
    /// True for `statusCode` 7: some channels failed (see `channels`).
    pub partial: bool,
    /// Per channel, when the server said (it does for a partial success).
    pub channels: Vec<ChannelStatus>,
}

impl ContactCenterSession {
    /// The channels that did not start.
    pub fn failed(&self) -> impl Iterator<Item = &ChannelStatus> {
        self.channels.iter().filter(|c| c.status_code != 0)
    }
}

impl GwsSession {
    /// Every device the user has now: `GET {base}/api/v2/me/devices?fields=*`, each its exact
    /// JSON text.
    pub async fn devices(&self) -> Result<Vec<Box<RawValue>>> {
        #[derive(Deserialize)]
        struct Devices {
            #[serde(default)]
            devices: Vec<Box<RawValue>>,
        }
        let mut url = self.url(&["me", "devices"]);
        url.set_query(Some("fields=*"));
        let body = self
            .request(Method::GET, &url, None, OP_GET_DEVICES, None)
            .await?;
        let devices: Devices = serde_json::from_slice(&body).map_err(|e| RestError::Malformed {
            url: url.to_string(),
            message: format!("not a GWS devices reply: {e}"),
        })?;
        Ok(devices.devices)
    }

    /// `StartContactCenterSession` on `channels` (e.g. `voice`): assigns the devices and
    /// logs the agent in, as a desktop does at start. A partial success (`statusCode` 7) is
    /// an answer, not an error: [`ContactCenterSession::failed`] names what did not start.
    pub async fn start_contact_center_session(
        &self,
        channels: &[String],
    ) -> Result<ContactCenterSession> {
        let list: Vec<String> = channels.iter().map(|c| quote(c)).collect();
        let body = format!(
            r#"{{"operationName":"{OP_START}","channels":[{}]}}"#,
            list.join(",")
        );
        let url = self.url(&["me"]);
        let reply = self.exchange(Method::POST, &url, Some(body)).await?;
        let code = serde_json::from_slice::<StatusFields>(&reply.body)
            .ok()
            .and_then(|f| f.status_code);
        if code != Some(GwsStatus::PartialSuccess.code()) {
            judge(&url, reply, OP_START, None)?;
            return Ok(ContactCenterSession {
                partial: false,
                channels: Vec::new(),
            });
        }
        Ok(ContactCenterSession {
            partial: true,
            channels: channel_statuses(&reply.body),
        })
    }

    /// `EndContactCenterSession`: logs the agent out of every channel and ends the HTTP
    /// session. Only ever sent when asked for.
    pub async fn end_contact_center_session(&self) -> Result<()> {
        let body = format!(r#"{{"operationName":"{OP_END}"}}"#);
        let url = self.url(&["me"]);
        self.request(Method::POST, &url, Some(body), OP_END, None)
            .await
            .map(drop)
    }
}

/// The per-channel statuses of a partial success, as `"channels":{"<name>":{"statusCode":..,
/// "statusMessage":..}}` (GWS does not document the layout; other shapes give none).
fn channel_statuses(body: &[u8]) -> Vec<ChannelStatus> {
    #[derive(Deserialize)]
    struct Reply {
        channels: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let Ok(Reply {
        channels: Some(channels),
    }) = serde_json::from_slice(body)
    else {
        return Vec::new();
    };
    channels
        .into_iter()
        .map(|(channel, v)| ChannelStatus {
            channel,
            status_code: v.get("statusCode").and_then(|c| c.as_i64()).unwrap_or(0),
            message: v
                .get("statusMessage")
                .and_then(|m| m.as_str())
                .map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_success_names_each_channel() {
        let body = br#"{"statusCode":7,"statusMessage":"Partial success","channels":{"voice":{"statusCode":0},"chat":{"statusCode":4,"statusMessage":"no such channel"}}}"#;
        let s = channel_statuses(body);
        assert_eq!(s.len(), 2);
        let failed: Vec<_> = s.iter().filter(|c| c.status_code != 0).collect();
        assert_eq!(failed[0].channel, "chat");
        assert_eq!(failed[0].message.as_deref(), Some("no such channel"));
        assert!(channel_statuses(br#"{"statusCode":7}"#).is_empty());
    }
}
