//! # gws-cometd
//!
//! A CometD/Bayeux long-polling client for Genesys Web Services (GWS) voice notifications:
//! it keeps a notification stream flowing through re-handshakes, server restarts, silence and
//! garbage, restores its subscriptions by itself, and yields typed
//! `CallStateChangeMessage` values on a [`futures::Stream`].
//!
//! ## Module map (imports point down only)
//!
//! | layer | module | what it is |
//! |---|---|---|
//! | GWS | [`gws`] | the typed model, the one wire decoder, the [`CallStore`](gws::CallStore) reducer, the REST session, the [`CallFeed`](gws::CallFeed) |
//! | client | [`client`] | [`ClientBuilder`] → cloneable [`Client`] handle and its driver task; subscriptions as `Stream`s; [`ClientEvent`]s |
//! | transport | [`transport`] | the [`Transport`](transport::Transport) trait; long polling over HTTP and its builder |
//! | protocol | [`bayeux`] | the sans-IO protocol: messages, advice, channels, what the session tells the application (its state machine and the reply splitter are the driver's, inside the crate) |
//! | beside | [`backoff`] | retry delays: exponential, jittered, capped, reset on success |
//! | beside | [`fixture`] | JSON Lines recording and replay of what came over the wire |
//! | top | [`error`] | [`Error`]: each layer's error type, composed |
//!
//! ## The public types, by module
//!
//! | module | what a user needs |
//! |---|---|
//! | the crate root | [`Client`], [`ClientBuilder`], [`ClientEvent`], [`EventStream`], [`Subscriber`], [`TypedSubscriber`], [`Error`], [`Result`] |
//! | [`client`] | the same, and [`ReplyTap`](client::ReplyTap), [`DEFAULT_BUFFER`](client::DEFAULT_BUFFER), [`DEFAULT_MAX_MESSAGE_BYTES`](client::DEFAULT_MAX_MESSAGE_BYTES) |
//! | [`gws`] | [`CallFeed`](gws::CallFeed) and its [`FeedEvent`](gws::FeedEvent)s ([`CallEvent`](gws::CallEvent): the change and the call as a [`CallView`](gws::CallView)), [`CallStore`](gws::CallStore), [`Call`](gws::Call), [`UserData`](gws::UserData) and its [`Value`](gws::Value)s, the notifications ([`CallStateChangeMessage`](gws::CallStateChangeMessage), [`Notification`](gws::Notification)); from [`gws::rest`], re-exported: [`GwsSession`](gws::GwsSession), [`Credentials`](gws::Credentials), [`RestError`](gws::RestError). One `use gws_cometd::gws::{...}` names what a service needs |
//! | [`bayeux`] | [`Message`](bayeux::Message) and its parts ([`Advice`](bayeux::Advice), [`Reconnect`](bayeux::Reconnect), [`Subscription`](bayeux::Subscription), [`BayeuxError`](bayeux::BayeuxError)); [`ChannelName`](bayeux::ChannelName), [`channel_matches`](bayeux::channel_matches); what the session says: [`SessionEvent`](bayeux::SessionEvent), [`GapCause`](bayeux::GapCause), [`Cause`](bayeux::Cause), [`Failure`](bayeux::Failure) of a [`FailureKind`](bayeux::FailureKind), [`Limit`](bayeux::Limit), [`SessionError`](bayeux::SessionError) |
//! | [`transport`] | [`Transport`](transport::Transport) ([`SendFuture`](transport::SendFuture), [`ReplyBody`](transport::ReplyBody)); [`HttpTransport`](transport::HttpTransport) and its builder, [`HttpOptions`](transport::HttpOptions), [`new_client`](transport::http::new_client), [`Cookies`](transport::Cookies), [`TransportError`](transport::TransportError) |
//! | [`backoff`] | [`BackoffConfig`](backoff::BackoffConfig), [`Backoff`](backoff::Backoff) |
//! | [`fixture`] | [`Recorder`](fixture::Recorder), [`Replay`](fixture::Replay), [`read`](fixture::read) |
//!
//! ## Which GWS: API v2 or the Workspace API v3
//!
//! One [`CallFeed`](gws::CallFeed), one store and one change format serve both generations;
//! the generation is a choice of the builder, [`Api`](gws::Api):
//!
//! - **GWS 8.5** (on-premises Engage, `https://host/api/v2`): the default,
//!   [`Api::V2`](gws::Api::V2); a user name and password (HTTP Basic, then the session
//!   cookie).
//! - **GWS 9 / Genesys Multicloud CX** (`/auth/v3` and `/workspace/v3`):
//!   [`Api::V3`](gws::Api::V3); the user is `tenant\user` (`\user` for an empty tenant). With
//!   a user and password alone the feed signs in with the form and the authorization code, as
//!   the OAuth client [`client_id`](gws::CallFeedBuilder::client_id) with
//!   [`redirect_uri`](gws::CallFeedBuilder::redirect_uri) (what the deployment registered);
//!   with [`client_credentials`](gws::CallFeedBuilder::client_credentials) it uses the
//!   password grant. [`api_key`](gws::CallFeedBuilder::api_key) adds the `x-api-key` some
//!   deployments want.
//!
//! ```no_run
//! use gws_cometd::gws::{Api, CallFeed, Credentials};
//!
//! # async fn open() -> gws_cometd::Result<()> {
//! let feed = CallFeed::builder(
//!     "https://gws.example.com",
//!     Credentials::new("\\agent1", std::env::var("GWS_PASSWORD").unwrap_or_default()),
//! )
//! .api(Api::V3)
//! .client_id("my-registered-client")
//! .redirect_uri("https://my-service.example.com/")
//! .connect()
//! .await?;
//! # drop(feed);
//! # Ok(())
//! # }
//! ```
//!
//! A v3 call's user data (a typed key-value list) reads and prints as v2's: strings as
//! strings, integers exactly, nested lists as nested pairs, duplicates in order.
//!
//! ## Where things go
//!
//! - **A new GWS notification type**: one model file in `gws/model/` (a `record!` with
//!   `Typed`), one arm in the wire decoder's dispatch (`gws/wire/mod.rs`,
//!   `Data::into_notification`), one [`FeedEvent`](gws::FeedEvent) variant.
//! - **A new transport** (say, WebSocket): one [`Transport`](transport::Transport) impl that
//!   sorts its errors into [`FailureKind`](bayeux::FailureKind)s; hand it to
//!   [`ClientBuilder::new`].
//! - **A new sink** for the changes (a broker, a database): a crate beside
//!   `gws-cometd-bridge` that consumes [`FeedEvent`](gws::FeedEvent)s; the CLI subcommand
//!   that runs it in `gws-cometd-cli`.
//!
//! ## The workspace
//!
//! This crate is what a service depends on: no server, no command-line parser, no broker
//! client. Its one Cargo feature, `server` (off by default), adds `http_server`, the
//! HTTP/1.1 serve loop the simulator and the bridge run on; a service never turns it on.
//! Beside it, each a crate of its own:
//!
//! | crate | what it is |
//! |---|---|
//! | `gws-cometd-sim` | the GWS simulator: REST, CometD notifications, a living contact center, faults on purpose |
//! | `gws-cometd-bridge` | many agents' feeds into NATS JetStream, with replicas, shards and metrics |
//! | `gws-cometd-cli` | the `gws-cometd` binary: `watch`, `tail`, `replay`, `serve`, `bridge`, the REST commands |
//!
//! ## Example
//!
//! Subscribe to a channel of the built-in simulator and read one message:
//!
//! ```
//! use futures::StreamExt;
//! use gws_cometd::bayeux::SessionEvent;
//! use gws_cometd_sim::{SimConfig, SimServer};
//! use gws_cometd::{Client, ClientEvent};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = SimServer::start(SimConfig::default()).await?;
//! let client = Client::builder(sim.url()).build()?;
//! let mut events = client.events();
//! let mut calls = client.subscribe("/v2/me/calls").await?;
//!
//! // Wait until the server confirms the subscription, then publish.
//! while let Some(event) = events.next().await {
//!     if let ClientEvent::Session(SessionEvent::Subscribed { .. }) = event {
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
//! use gws_cometd::gws::{CallEvent, CallFeed, Credentials, FeedEvent};
//! use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The default simulator: a living contact center, calls arriving every few seconds.
//! let sim = GwsSimServer::start(GwsServerConfig::new("agent", "secret")).await?;
//! // Connected, subscribed, and caught up with the calls already in progress.
//! let mut feed = CallFeed::builder(sim.base_url(), Credentials::new("agent", "secret"))
//!     .connect()
//!     .await?;
//! while let Some(event) = feed.next().await {
//!     match event {
//!         // The change, and the call as it left it: typed (state, userData, ...) and exact.
//!         FeedEvent::Call(CallEvent { change, call: Some(call) }) if !change.user_data.is_empty() => {
//!             let account = call.user_data().get("AccountNumber").expect("attached");
//!             println!("{}: {:?}, account {account}", change.call_id, call.state);
//!             break;
//!         }
//!         FeedEvent::Gap { cause } => println!("may have missed messages: {cause}"),
//!         FeedEvent::Healed { changes } => println!("healed: {changes} calls differed"),
//!         _ => {}
//!     }
//! }
//! feed.disconnect().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod backoff;
pub mod bayeux;
pub mod client;
// The feed's and the bridge's per-call queue: shared by two crates, promised to no service.
#[doc(hidden)]
pub mod coalesce;
pub mod error;
pub mod fixture;
pub mod gws;
#[cfg(feature = "server")]
pub mod http_server;
mod json;
pub mod transport;

pub use client::{Client, ClientBuilder, ClientEvent, EventStream, Subscriber, TypedSubscriber};
pub use error::{Error, Result};
