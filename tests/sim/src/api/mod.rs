//! The `api` commands the simulated box answers, with FreeSWITCH's bodies.
//! Every executed command (known or not) also fires an `API` event, as
//! `switch_api_execute` does.

mod cjson;
pub(crate) mod control;
mod modules;
mod show;

use crate::config::FS_VERSION;
use crate::scripts::originate::OriginateApp;
use crate::state::Core;

pub use control::uptime;

/// Work to do after the reply has been written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// `fsctl shutdown`: stop the box.
    Shutdown,
    /// Run an originated leg's application.
    App(String, OriginateApp),
}

impl After {
    /// Does the follow-up work that only needs the core.
    pub fn run_app(&self, core: &mut Core) {
        if let Self::App(uuid, app) = self {
            core.originate_app(uuid, *app);
        }
    }
}

/// Result of one api command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiOutput {
    /// Response body, verbatim (empty: FreeSWITCH sends `-ERR no reply`).
    pub body: String,
    /// Follow-up.
    pub after: Option<After>,
}

/// Runs `cmd arg` against the core.
pub fn execute(core: &mut Core, cmd: &str, arg: Option<&str>) -> ApiOutput {
    let mut after = None;
    let body = match cmd {
        "status" => control::status(core),
        "version" => format!("FreeSWITCH Version {FS_VERSION} ( 64bit)\n"),
        "hostname" => core.cfg.hostname.clone(),
        "global_getvar" => control::global_getvar(core, arg),
        "show" => show::show(core, arg),
        "uuid_dump" => control::uuid_dump(core, arg),
        "uuid_kill" => control::uuid_kill(core, arg),
        "uuid_exists" => {
            let exists = arg.is_some_and(|u| core.chan(u.trim()).is_some());
            exists.to_string()
        }
        "valet_info" => modules::valet_info(core, arg),
        "conference" => modules::conference(core, arg),
        "fifo" => modules::fifo(core, arg),
        "callcenter_config" => modules::callcenter_config(core, arg),
        "hash" => modules::hash(core, arg),
        "user_data" => modules::user_data(core, arg),
        "sofia" => modules::sofia(core, arg),
        "originate" => {
            let (body, a) = control::originate(core, arg);
            after = a;
            body
        }
        "fsctl" => {
            if arg.is_some_and(|a| a.split_whitespace().next() == Some("shutdown")) {
                after = Some(After::Shutdown);
            }
            "+OK\n".into()
        }
        "sim" => control::sim(core, arg),
        _ => format!("-ERR {cmd} Command not found!\n"),
    };
    core.api_event(cmd, arg);
    ApiOutput { body, after }
}
