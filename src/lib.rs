//! # gws-cometd
//!
//! A CometD/Bayeux long-polling client for Genesys Web Services (GWS) voice notifications:
//! it keeps a notification stream flowing through re-handshakes, server restarts, silence and
//! garbage, restores its subscriptions by itself, and yields typed
//! `CallStateChangeMessage` values on a [`futures::Stream`].
//!
//! ## Module map (imports point down only)
//!
//! | module | what it is |
//! |---|---|
//! | [`gws`] | the typed GWS model, the `CallStore` reducer, the REST session and user-data operations, the `CallFeed` |
//! | [`client`] | [`ClientBuilder`] → cloneable [`Client`] handle and its driver task; subscriptions as `Stream`s; session [`ClientEvent`]s |
//! | [`transport`] | the [`Transport`](transport::Transport) trait and long polling over HTTP |
//! | [`bayeux`] | the sans-IO protocol: messages, advice, channels, the session state machine |
//! | [`fixture`] | JSON Lines recording and replay of what came over the wire |
//! | [`sim`] | an in-process Bayeux/GWS simulator for tests and demos |
//! | [`error`] | the one [`Error`] type; each variant says whether it is fatal or retryable |
//!
//! ## Example
//!
//! Subscribe to a channel of the built-in simulator and read one message:
//!
//! ```
//! use futures::StreamExt;
//! use gws_cometd::sim::{SimConfig, SimServer};
//! use gws_cometd::{Client, ClientEvent};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = SimServer::start(SimConfig::default()).await?;
//! let client = Client::builder(sim.url()).build()?;
//! let mut events = client.events();
//! let mut calls = client.subscribe("/v2/me/calls")?;
//!
//! // Wait until the server confirms the subscription, then publish.
//! while let Some(event) = events.next().await {
//!     if let ClientEvent::Subscribed { .. } = event {
//!         break;
//!     }
//! }
//! sim.publish_str("/v2/me/calls", r#"{"messageType":"CallStateChangeMessage"}"#);
//!
//! let message = calls.next().await.expect("one message");
//! assert_eq!(message.channel, "/v2/me/calls");
//! client.disconnect().await;
//! # Ok(())
//! # }
//! ```
//!
//! Follow one agent's calls on GWS (here the built-in GWS simulator), with a call store
//! that stays right across re-handshakes and re-logins:
//!
//! ```
//! use gws_cometd::gws::api::Credentials;
//! use gws_cometd::gws::{CallFeed, FeedEvent};
//! use gws_cometd::sim::{GwsServerConfig, GwsSimServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The default scenario: a call rings, is answered, gets AccountNumber attached.
//! let sim = GwsSimServer::start(GwsServerConfig::new("agent", "secret")).await?;
//! let mut feed = CallFeed::builder(sim.base_url(), Credentials::new("agent", "secret"))
//!     .connect()
//!     .await?;
//! while let Some(event) = feed.next().await {
//!     match event {
//!         FeedEvent::Call { change: Some(change), .. } if !change.user_data.is_empty() => {
//!             let store = feed.store();
//!             let call = store.get(&change.call_id).expect("in the store");
//!             assert!(call.user_data().get("AccountNumber").is_some());
//!             break;
//!         }
//!         FeedEvent::Recovered { changes } => println!("recovered: {} changes", changes.len()),
//!         _ => {}
//!     }
//! }
//! feed.disconnect().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bayeux;
pub mod client;
pub mod error;
pub mod fixture;
pub mod gws;
mod json;
pub mod sim;
pub mod transport;

pub use client::{Client, ClientBuilder, ClientEvent, EventStream, Subscriber, TypedSubscriber};
pub use error::{Error, Result};
