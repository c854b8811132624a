//! `answer`, `hold`, `retrieve`, `hangup`: control a call on GWS, for tests and demos.

use std::process::ExitCode;

use super::gws_args::{check_call_id, GwsArgs};
use super::operation;

/// Arguments of the call-control commands.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id (the `callId` of `watch`'s lines).
    call_id: String,
}

/// A call-control operation.
#[derive(Clone, Copy, Debug)]
pub enum Control {
    /// `Answer` a ringing call.
    Answer,
    /// `Hold` an established call.
    Hold,
    /// `Retrieve` a held call.
    Retrieve,
    /// `Hangup`: end the call.
    Hangup,
}

impl Control {
    fn command(self) -> &'static str {
        match self {
            Control::Answer => "answer",
            Control::Hold => "hold",
            Control::Retrieve => "retrieve",
            Control::Hangup => "hangup",
        }
    }
}

/// Runs the operation; see [`operation::run`] for the exit codes.
pub fn run(control: Control, args: CallArgs) -> ExitCode {
    let checked = check_call_id(&args.call_id);
    operation::run(control.command(), &args.gws, checked, |s| async move {
        let id = args.call_id.as_str();
        match control {
            Control::Answer => s.answer(id).await,
            Control::Hold => s.hold(id).await,
            Control::Retrieve => s.retrieve(id).await,
            Control::Hangup => s.hangup(id).await,
        }
    })
}
