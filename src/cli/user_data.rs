//! `attach`, `update`, `delete-pair`, `delete-all`: change a call's attached data on GWS.
//!
//! Values are typed by how they are written (see [`super::pairs::parse_pair`]): `Priority=2` sends an
//! integer, `Code="123"` (quotes reaching the program, so `'Code="123"'` in a shell) a
//! string, and anything else (`Name=Ann`, `Zip=007`, `Rate=1.5`) a string.

use std::process::ExitCode;

use gws_cometd::gws::rest::{GwsSession, RestError, UserValue};

use super::gws_args::{runtime, GwsArgs};
use super::pairs::parse_pair;

/// Arguments of `attach` and `update`.
#[derive(clap::Args, Debug)]
pub struct PairsArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id.
    call_id: String,
    /// KEY=VALUE pairs, in order. VALUE is an integer when it is a JSON integer literal,
    /// a string when in double quotes or anything else.
    #[arg(value_name = "KEY=VALUE", required = true)]
    pairs: Vec<String>,
}

/// Arguments of `delete-pair`.
#[derive(clap::Args, Debug)]
pub struct DeletePairArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id.
    call_id: String,
    /// The key to remove (every occurrence).
    key: String,
}

/// Arguments of `delete-all`.
#[derive(clap::Args, Debug)]
pub struct DeleteAllArgs {
    #[command(flatten)]
    gws: GwsArgs,
    /// The call id.
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

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Attach(_) => "attach",
            Operation::Update(_) => "update",
            Operation::DeletePair(_) => "delete-pair",
            Operation::DeleteAll(_) => "delete-all",
        }
    }

    fn gws(&self) -> &GwsArgs {
        match self {
            Operation::Attach(a) | Operation::Update(a) => &a.gws,
            Operation::DeletePair(a) => &a.gws,
            Operation::DeleteAll(a) => &a.gws,
        }
    }
}

/// Runs the operation: exit 0 on `statusCode` 0; 1 when GWS refused it; 2 when it could not
/// be sent (bad arguments, login failed, server unreachable).
pub fn run(op: Operation) -> ExitCode {
    let name = op.name();
    let prepared = (|| {
        let pairs = match &op {
            Operation::Attach(a) | Operation::Update(a) => a
                .pairs
                .iter()
                .map(|p| parse_pair(p).map_err(|e| e.to_string()))
                .collect::<Result<Vec<(String, UserValue)>, String>>()?,
            _ => Vec::new(),
        };
        let gws = op.gws();
        let session =
            GwsSession::new(&gws.base_url, gws.credentials()?).map_err(|e| e.to_string())?;
        Ok::<_, String>((pairs, session, runtime(name)?))
    })();
    let (pairs, session, rt) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gws-cometd {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        session.login().await?;
        match &op {
            Operation::Attach(a) => session.attach_user_data(&a.call_id, &pairs).await,
            Operation::Update(a) => session.update_user_data(&a.call_id, &pairs).await,
            Operation::DeletePair(a) => session.delete_user_data_pair(&a.call_id, &a.key).await,
            Operation::DeleteAll(a) => session.delete_user_data(&a.call_id).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ RestError::Gws { .. }) => {
            eprintln!("gws-cometd {name}: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gws-cometd {name}: {e}");
            ExitCode::from(2)
        }
    }
}
