//! The full truth of a box, read over ESL at every (re)connect: live
//! channels (each with all its variables), valet lots, conferences, queues
//! and core status, fed into a fresh [`Model`] through the same code path as
//! live events. The publisher then replaces the node's keys with its image,
//! which deletes whatever ended while we were not looking.

use locus_esl::{EslError, EslHandle};
use locus_schema::{EslLink, NodeStatus};
use tracing::{debug, warn};

use crate::listing::{self, ListingError, QueueEntry};
use crate::model::{Model, ModelConfig};
use crate::now_ms;

/// Builds a model of the box as it is now.
pub async fn snapshot(
    handle: &EslHandle,
    cfg: ModelConfig,
    base: NodeStatus,
) -> Result<Model, EslError> {
    let mut model = Model::new(cfg, base);
    let rows = read(handle, listing::SHOW_CHANNELS, listing::parse_show_json)
        .await?
        .unwrap_or_default();
    for row in rows {
        let Some(uuid) = row.get("uuid").filter(|u| !u.is_empty()) else {
            continue;
        };
        // A channel can end between the listing and its dump: skip it.
        if let Some(ev) = read(
            handle,
            &listing::uuid_dump(uuid),
            listing::parse_uuid_dump_json,
        )
        .await?
        {
            model.apply(&ev, now_ms());
        }
    }
    let now = now_ms();
    if let Some(lots) = read(handle, listing::VALET_INFO, listing::parse_valet_info).await? {
        model.apply_valet(&lots, now);
    }
    if let Some(confs) = read(
        handle,
        listing::CONFERENCE_LIST,
        listing::parse_conference_json_list,
    )
    .await?
    {
        model.apply_conferences(&confs, now);
    }
    let mut queues: Vec<QueueEntry> = read(handle, listing::FIFO_LIST, listing::parse_fifo_list)
        .await?
        .unwrap_or_default();
    if let Some(names) = read(
        handle,
        listing::CALLCENTER_QUEUES,
        listing::parse_callcenter_queues,
    )
    .await?
    {
        // One reply lists every queue's members. With a callcenter database
        // shared by several boxes it names other boxes' callers too: the
        // model counts only callers that are live channels here.
        let members = read(
            handle,
            listing::CALLCENTER_MEMBERS,
            listing::parse_callcenter_members,
        )
        .await?;
        queues.extend(listing::callcenter_entries(
            names,
            members.unwrap_or_default(),
        ));
    }
    model.apply_queues(&queues, now);
    if let Some(mut st) = read(handle, listing::STATUS, listing::parse_status).await? {
        if let Some(v) = read(handle, listing::VERSION, listing::parse_version).await? {
            st.version = v;
        }
        model.apply_status(&st, now);
    }
    model.set_esl(EslLink::Up, now_ms());
    Ok(model)
}

/// Runs one api command and parses its body. A FreeSWITCH `-ERR` (module
/// not loaded, channel gone) or an unreadable body is logged and yields
/// `None`: one missing listing must not stop the agent. Link errors fail.
async fn read<T>(
    handle: &EslHandle,
    cmd: &str,
    parse: impl Fn(&str) -> Result<T, ListingError>,
) -> Result<Option<T>, EslError> {
    let body = match handle.api(cmd).await {
        Ok(body) => body,
        Err(EslError::Api(text)) => {
            debug!(cmd, reply = %text.trim(), "api refused during resync");
            return Ok(None);
        }
        Err(EslError::NoReply) => return Ok(None),
        Err(e) => return Err(e),
    };
    match parse(&body) {
        Ok(v) => Ok(Some(v)),
        Err(ListingError::Fs(text)) => {
            debug!(cmd, reply = %text.trim(), "api refused during resync");
            Ok(None)
        }
        Err(e) => {
            warn!(cmd, error = %e, "unreadable api reply during resync");
            Ok(None)
        }
    }
}
