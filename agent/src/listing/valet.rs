//! `valet_info`: parked calls per lot.
//!
//! mod_valet_parking prints this XML by hand, line by line:
//!
//! ```text
//! <lots>
//!   <lot name="valet_parking_lot">
//!     <extension uuid="6135437e-...">6001</extension>
//!   </lot>
//! </lots>
//! ```
//!
//! A lot stays listed (empty) after its last call leaves; a lot that never
//! held a call is absent. Slots reserved but not yet taken (a token with a
//! timeout) are left out by FreeSWITCH itself. Names are not XML-escaped,
//! so a lot name holding `&`, `<` or `"` makes the body unparseable: that
//! is reported as malformed rather than guessed at.

use super::{ListingError, ValetEntry, check_api_error};

const WHAT: &str = "valet_info";

/// Parses a `valet_info` body into one entry per parked call.
pub fn parse_valet_info(xml: &str) -> Result<Vec<ValetEntry>, ListingError> {
    let xml = check_api_error(xml)?;
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| ListingError::malformed(WHAT, e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name("lots") {
        return Err(ListingError::malformed(
            WHAT,
            format!("root element <{}>", root.tag_name().name()),
        ));
    }
    let mut out = Vec::new();
    for lot in root.children().filter(|n| n.has_tag_name("lot")) {
        let name = lot
            .attribute("name")
            .ok_or_else(|| ListingError::malformed(WHAT, "lot without name"))?;
        for ext in lot.children().filter(|n| n.has_tag_name("extension")) {
            let uuid = ext
                .attribute("uuid")
                .filter(|u| !u.is_empty())
                .ok_or_else(|| ListingError::malformed(WHAT, "extension without uuid"))?;
            let slot = ext.text().map(str::trim).unwrap_or_default();
            if slot.is_empty() {
                return Err(ListingError::malformed(WHAT, "extension without number"));
            }
            out.push(ValetEntry {
                lot: name.to_owned(),
                slot: slot.to_owned(),
                uuid: uuid.to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::super::captured;
    use super::*;

    #[test]
    fn parked_and_empty_lots_from_capture() {
        let bodies = captured::replies_to("05-valet-park.json.txt", "valet_info");
        let parked = parse_valet_info(&bodies[0]).unwrap();
        assert_eq!(
            parked,
            vec![ValetEntry {
                lot: "valet_parking_lot".into(),
                slot: "6001".into(),
                uuid: "6135437e-4c88-4ea4-a54a-13a7b9653587".into(),
            }]
        );
        // After retrieval the lot is listed with no extension.
        assert!(parse_valet_info(&bodies[1]).unwrap().is_empty());
        // `valet_info <lot>` has the same shape.
        let one = captured::replies_to("05-valet-park.json.txt", "valet_info valet_parking_lot");
        assert_eq!(parse_valet_info(&one[0]).unwrap(), parked);
        // Idle box: `<lots>\n</lots>\n`.
        let idle = captured::replies_to("01-auth-and-api.json.txt", "valet_info");
        assert!(parse_valet_info(&idle[0]).unwrap().is_empty());
    }

    #[test]
    fn parked_uuid_is_a_live_channel() {
        let file = "10-concurrent-calls.json.txt";
        let parked = parse_valet_info(&captured::replies_to(file, "valet_info")[0]).unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].slot, "6002");
        let chans =
            super::super::parse_show_json(&captured::replies_to(file, "show channels as json")[0])
                .unwrap();
        let row = chans.iter().find(|r| r["uuid"] == parked[0].uuid).unwrap();
        assert_eq!(row["dest"], "6002");
    }

    #[test]
    fn several_lots() {
        let xml = "<lots>\n  <lot name=\"a\">\n    <extension uuid=\"u1\">1</extension>\n    \
                   <extension uuid=\"u2\">2</extension>\n  </lot>\n  <lot name=\"b\">\n    \
                   <extension uuid=\"u3\">9</extension>\n  </lot>\n</lots>\n";
        let got = parse_valet_info(xml).unwrap();
        let flat: Vec<_> = got
            .iter()
            .map(|e| (e.lot.as_str(), e.slot.as_str(), e.uuid.as_str()))
            .collect();
        assert_eq!(flat, [("a", "1", "u1"), ("a", "2", "u2"), ("b", "9", "u3")]);
    }

    #[test]
    fn malformed_and_truncated() {
        for xml in [
            "",
            "junk",
            "<lots>",
            "<fifo_report></fifo_report>",
            "<lots><lot><extension uuid=\"u\">1</extension></lot></lots>",
            "<lots><lot name=\"a\"><extension>1</extension></lot></lots>",
            "<lots><lot name=\"a\"><extension uuid=\"u\"></extension></lot></lots>",
            "<lots><lot name=\"a&b\"></lot></lots>",
        ] {
            assert!(
                matches!(parse_valet_info(xml), Err(ListingError::Malformed { .. })),
                "{xml:?}"
            );
        }
        let body = &captured::replies_to("05-valet-park.json.txt", "valet_info")[0];
        let end = body.trim_end().len();
        for cut in 0..end {
            assert!(parse_valet_info(&body[..cut]).is_err(), "cut at {cut}");
        }
    }
}
