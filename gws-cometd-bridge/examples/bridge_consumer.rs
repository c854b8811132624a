//! A service that reacts to the bridge's call changes: a durable JetStream consumer on
//! `gws.calls.>` (every agent, every call), reading the call's current snapshot from the
//! `gws_calls` KV bucket when its attached data changed.
//!
//! ```text
//! gws-cometd bridge --gws https://gws.example:8090 --agents agents.txt --nats nats://127.0.0.1:4222 &
//! cargo run --example bridge_consumer -- nats://127.0.0.1:4222 crm-sync
//! ```
//!
//! The durable name (`crm-sync`) keeps the consumer's place on the server: stop it and
//! start it again, and it goes on where it left off; two processes with the same name share
//! the work. Each change is acknowledged after it was handled, so a crash hands it out
//! again (handle changes idempotently: `Nats-Msg-Id` names each change uniquely).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use gws_cometd_bridge::{unescape_token, BUCKET, STREAM, SUBJECTS};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let durable = args.next().unwrap_or_else(|| "crm-sync".into());

    let client = async_nats::connect(url.as_str()).await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(STREAM).await?;
    let calls = js.get_key_value(BUCKET).await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            consumer::pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: SUBJECTS.into(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                // A new consumer starts with the changes from now on; use `All` to replay
                // what the stream still holds.
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            },
        )
        .await?;

    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        // gws.calls.<agent>.<call id>, both escaped.
        let tokens: Vec<&str> = message.subject.split('.').collect();
        let (agent, call_id) = match tokens.as_slice() {
            [_, _, agent, call] => (
                unescape_token(agent).unwrap_or_default(),
                unescape_token(call).unwrap_or_default(),
            ),
            _ => (String::new(), String::new()),
        };
        let change: serde_json::Value = serde_json::from_slice(&message.payload)?;
        println!("{agent} {call_id}: {change}");
        if change.get("userData").is_some() {
            // The call as it is now (it may be newer than this change).
            let key = tokens[2..].join(".");
            if let Some(call) = calls.get(&key).await? {
                let call: serde_json::Value = serde_json::from_slice(&call)?;
                println!("  userData now: {}", call["userData"]);
            }
        }
        message.ack().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
