//! `attach`, `update`, `delete-pair`, `delete-all`: change a call's attached data on GWS.
//!
//! Values as httpie writes them (see [`super::pairs`]): `KEY=VALUE` is a string,
//! `KEY:=JSON` a JSON value.

use std::process::ExitCode;

use gws_cometd::gws::rest::UserValue;

use super::gws_args::{check_call_id, GwsArgs};
use super::operation;
use super::pairs::parse_pair;

/// Arguments of `attach` and `update`.
#[derive(clap::Args, Debug)]
pub struct PairsArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id (the `callId` of `watch`'s lines).
    call_id: String,
    /// KEY=VALUE (VALUE is a string) or KEY:=JSON (a JSON value), in order.
    #[arg(value_name = "KEY=VALUE|KEY:=JSON", required = true)]
    pairs: Vec<String>,
}

/// Arguments of `delete-pair`.
#[derive(clap::Args, Debug)]
pub struct DeletePairArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id (the `callId` of `watch`'s lines).
    call_id: String,
    /// The key to remove (every occurrence); a key alone, not KEY=VALUE.
    key: String,
}

/// Arguments of `delete-all`.
#[derive(clap::Args, Debug)]
pub struct DeleteAllArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id (the `callId` of `watch`'s lines).
    call_id: String,
}

/// Which operation to run.
pub enum Operation {
    /// `AttachUserData`.
    Attach(PairsArgs),
    /// `UpdateUserData`.
    Update(PairsArgs),
    /// `DeleteUserDataPair`.
    DeletePair(DeletePairArgs),
    /// `DeleteUserData`.
    DeleteAll(DeleteAllArgs),
}

/// Runs the operation; see [`operation::run`] for the exit codes.
pub fn run(op: Operation) -> ExitCode {
    match op {
        Operation::Attach(a) => with_pairs("attach", a, false),
        Operation::Update(a) => with_pairs("update", a, true),
        Operation::DeletePair(a) => {
            let checked = check_call_id(&a.call_id).and_then(|()| check_key(&a.key));
            operation::run("delete-pair", &a.gws, checked, |s| async move {
                s.delete_user_data_pair(&a.call_id, &a.key).await
            })
        }
        Operation::DeleteAll(a) => {
            let checked = check_call_id(&a.call_id);
            operation::run("delete-all", &a.gws, checked, |s| async move {
                s.delete_user_data(&a.call_id).await
            })
        }
    }
}

fn with_pairs(command: &str, args: PairsArgs, update: bool) -> ExitCode {
    let pairs = args
        .pairs
        .iter()
        .map(|p| parse_pair(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<(String, UserValue)>, String>>();
    let (checked, pairs) = match (check_call_id(&args.call_id), pairs) {
        (Ok(()), Ok(pairs)) => (Ok(()), pairs),
        (Err(e), _) | (_, Err(e)) => (Err(e), Vec::new()),
    };
    operation::run(command, &args.gws, checked, |s| async move {
        if update {
            s.update_user_data(&args.call_id, &pairs).await
        } else {
            s.attach_user_data(&args.call_id, &pairs).await
        }
    })
}

/// `delete-pair` takes a key: `A=1` there is a mistake (the pair's syntax), not a key named
/// `A=1`.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".to_owned());
    }
    if key.contains('=') {
        let name = key
            .split('=')
            .next()
            .unwrap_or_default()
            .trim_end_matches(':');
        return Err(format!(
            "delete-pair takes a KEY, not KEY=VALUE: got {:?}; to remove the key, give {:?}",
            key.chars().take(80).collect::<String>(),
            name
        ));
    }
    Ok(())
}
