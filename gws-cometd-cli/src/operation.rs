//! Running one GWS call operation from the command line: check everything locally, log in,
//! send, and map the outcome to an exit code.

use std::future::Future;
use std::process::ExitCode;

use gws_cometd::gws::rest::{GwsSession, RestError};

use super::gws_args::{runtime, GwsArgs};
use super::hint::describe_rest;
use super::log::fatal;
use super::{EXIT_FATAL, EXIT_REFUSED};

/// Sends the operation `send` makes of the session: exit 0 on `statusCode` 0, 1 when GWS
/// refused it (a non-zero `statusCode`), 2 when it could not be sent (bad arguments, no
/// password, login refused, server unreachable). `checked` is the outcome of the local
/// checks: an error there is reported before anything is sent.
pub fn run<F, Fut>(command: &str, gws: &GwsArgs, checked: Result<(), String>, send: F) -> ExitCode
where
    F: FnOnce(GwsSession) -> Fut,
    Fut: Future<Output = Result<(), RestError>>,
{
    let prepared = checked.and_then(|()| Ok((gws.session()?, runtime()?)));
    let (session, rt) = match prepared {
        Ok(p) => p,
        Err(e) => {
            fatal(command, &e);
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let result = rt.block_on(async {
        session.login().await?;
        send(session).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ RestError::Gws { .. }) => {
            fatal(command, &describe_rest(&e));
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => {
            fatal(command, &describe_rest(&e));
            ExitCode::from(EXIT_FATAL)
        }
    }
}
