//! Feature-code configuration (`[proxy.routing.features]`) and its
//! defaults, taken from FreeSWITCH's vanilla dialplan
//! (`conf/vanilla/dialplan/default.xml`): `group-intercept`,
//! `intercept-ext`, `valet_park`, the `nb/wb/uwb/cdquality` conferences,
//! and the FIFO `park` / `unpark` extensions.

use serde::Deserialize;

/// Directed pickup: `pattern` matched against the request-URI user, `ext`
/// the extension to pick up (regex replacement syntax: `$1`, `${1}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Extension template.
    pub ext: String,
}

/// Valet parking: `lot` names the lot, `slot` the slot when the code names
/// one (absent for "retrieve by asking", vanilla `6000`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValetCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Lot name template (vanilla: `valet_parking_lot`).
    pub lot: String,
    /// Slot template.
    #[serde(default)]
    pub slot: Option<String>,
}

/// A conference room code.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Room name template as the agent publishes it (`3001` for vanilla's
    /// `3001-${domain_name}@default`).
    pub room: String,
}

/// A call-center or FIFO queue code.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Queue name template as the agent publishes it (`5900` for
    /// `5900@${domain_name}`, `support@default` for mod_callcenter).
    pub queue: String,
}

/// `[proxy.routing.features]`. Codes are tried in this order (group,
/// directed, valet, conference, queue; list order within each) and the
/// first match wins.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Group pickup (vanilla `group-intercept`).
    pub group_pickup: Vec<String>,
    /// Directed pickup.
    pub directed_pickup: Vec<ExtCode>,
    /// Valet parking.
    pub valet: Vec<ValetCode>,
    /// Conference rooms.
    pub conference: Vec<RoomCode>,
    /// Queues.
    pub queue: Vec<QueueCode>,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        let ext = |p: &str| ExtCode {
            pattern: p.into(),
            ext: "$1".into(),
        };
        let room = |p: &str| RoomCode {
            pattern: p.into(),
            room: "$1".into(),
        };
        let queue = |p: &str, q: &str| QueueCode {
            pattern: p.into(),
            queue: q.into(),
        };
        let lot = "valet_parking_lot".to_owned();
        Self {
            group_pickup: vec![r"^\*8$".into()],
            // Vanilla `intercept-ext`. Other PBXes' `*4EXT` is not in
            // vanilla: add it here when the boxes' dialplan has it.
            directed_pickup: vec![ext(r"^\*\*(\d+)$")],
            // Vanilla `^(6000)$` (ask for the slot) and `^((?!6000)60\d{2})$`;
            // the regex crate has no look-ahead, so 6000 simply comes first.
            valet: vec![
                ValetCode {
                    pattern: r"^(6000)$".into(),
                    lot: lot.clone(),
                    slot: None,
                },
                ValetCode {
                    pattern: r"^(60\d{2})$".into(),
                    lot,
                    slot: Some("$1".into()),
                },
            ],
            // nb, wb, uwb, cdquality, and the video-mcu-stereo rooms at
            // full, 720, 480 and 320 lines.
            conference: ["30", "31", "32", "33", "35", "36", "37", "38"]
                .iter()
                .map(|p| room(&format!(r"^({p}\d{{2}})$")))
                .collect(),
            // FIFO park 5900 (in), unpark 5901 (out of 5900), Snom park+N.
            queue: vec![
                queue(r"^(5900)$", "$1"),
                queue(r"^5901$", "5900"),
                queue(r"^park\+(\d+)$", "$1"),
            ],
        }
    }
}
