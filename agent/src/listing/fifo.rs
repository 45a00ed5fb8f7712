//! `fifo list`: mod_fifo queues and their waiting callers.
//!
//! The body is switch_xml output (escaped properly) plus a newline:
//! `<fifo_report>` holding one `<fifo name=...>` per queue, each with
//! `<outbound>`, `<callers>`, `<consumers>` and `<bridges>`. A caller
//! still queued is a `<caller uuid=... status="WAITING" .../>` under
//! `<callers>`; once a consumer takes it, it leaves `<callers>` and shows up
//! under `<bridges><bridge><caller .../>` instead, which must not count.
//! `fifo list_verbose` has the same shape with a `<cdr>` in each caller.

use roxmltree::Node;

use super::{ListingError, QueueEntry, QueueKind, check_api_error};

const WHAT: &str = "fifo list";

/// Parses a `fifo list` (or `list_verbose`) body into one entry per fifo,
/// empty ones included, with the uuids of its queued callers.
pub fn parse_fifo_list(xml: &str) -> Result<Vec<QueueEntry>, ListingError> {
    let xml = check_api_error(xml)?;
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| ListingError::malformed(WHAT, e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name("fifo_report") {
        return Err(ListingError::malformed(
            WHAT,
            format!("root element <{}>", root.tag_name().name()),
        ));
    }
    root.children()
        .filter(|n| n.has_tag_name("fifo"))
        .map(fifo)
        .collect()
}

fn fifo(node: Node<'_, '_>) -> Result<QueueEntry, ListingError> {
    let name = node
        .attribute("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ListingError::malformed(WHAT, "fifo without name"))?;
    // Every caller in the queue is waiting whatever its `status` says: a
    // caller being bridged is popped from the queue before its status moves
    // on, so the list and the status can only disagree for an instant.
    let waiting = node
        .children()
        .filter(|n| n.has_tag_name("callers"))
        .flat_map(|c| c.children().filter(|n| n.has_tag_name("caller")))
        .map(|caller| {
            caller
                .attribute("uuid")
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ListingError::malformed(WHAT, "caller without uuid"))
        })
        .collect::<Result<_, _>>()?;
    Ok(QueueEntry {
        kind: QueueKind::Fifo,
        name: name.to_owned(),
        waiting,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::super::captured;
    use super::*;

    fn waiting<'a>(entries: &'a [QueueEntry], name: &str) -> &'a [String] {
        &entries.iter().find(|e| e.name == name).unwrap().waiting
    }

    #[test]
    fn caller_waits_in_5900() {
        let bodies = captured::replies_to("08-fifo.json.txt", "fifo list");
        let fifos = parse_fifo_list(&bodies[0]).unwrap();
        let names: Vec<_> = fifos.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["cool_fifo@127.0.0.1", "5900@127.0.0.1", "manual_calls"]
        );
        assert!(fifos.iter().all(|f| f.kind == QueueKind::Fifo));
        assert_eq!(
            waiting(&fifos, "5900@127.0.0.1"),
            ["246fa8f6-f6e0-43a7-8932-38e0c0463981"]
        );
        assert!(waiting(&fifos, "cool_fifo@127.0.0.1").is_empty());
        // The `caller_count` attribute FreeSWITCH prints agrees.
        assert!(
            bodies[0].contains("name=\"5900@127.0.0.1\" consumer_count=\"0\" caller_count=\"1\"")
        );
    }

    #[test]
    fn caller_leaves_after_the_consumer_takes_it() {
        let bodies = captured::replies_to("08-fifo.json.txt", "fifo list");
        let last = parse_fifo_list(bodies.last().unwrap()).unwrap();
        assert!(last.iter().all(|f| f.waiting.is_empty()), "{last:?}");
        let idle = captured::replies_to("01-auth-and-api.json.txt", "fifo list");
        let idle = parse_fifo_list(&idle[0]).unwrap();
        assert_eq!(idle.len(), 2);
        assert!(idle.iter().all(|f| f.waiting.is_empty()));
    }

    #[test]
    fn list_verbose_has_the_same_callers() {
        let plain = parse_fifo_list(&captured::replies_to("08-fifo.json.txt", "fifo list")[0]);
        let verbose = captured::replies_to("08-fifo.json.txt", "fifo list_verbose");
        assert!(verbose[0].contains("<cdr "));
        assert_eq!(parse_fifo_list(&verbose[0]).unwrap(), plain.unwrap());
    }

    #[test]
    fn bridged_callers_do_not_wait() {
        let xml = r#"<fifo_report><fifo name="q">
            <outbound><member uuid="m1"/></outbound>
            <callers><caller uuid="c1" status="WAITING"/></callers>
            <consumers><consumer uuid="k1"/></consumers>
            <bridges><bridge><caller uuid="c0"/><consumer uuid="k0"/></bridge></bridges>
          </fifo></fifo_report>"#;
        let fifos = parse_fifo_list(xml).unwrap();
        assert_eq!(waiting(&fifos, "q"), ["c1"]);
        assert!(parse_fifo_list("<fifo_report/>\n").unwrap().is_empty());
    }

    #[test]
    fn malformed_and_truncated() {
        for xml in [
            "",
            "junk",
            "<lots></lots>",
            "<fifo_report><fifo></fifo></fifo_report>",
            "<fifo_report><fifo name=\"q\"><callers><caller/></callers></fifo></fifo_report>",
        ] {
            assert!(
                matches!(parse_fifo_list(xml), Err(ListingError::Malformed { .. })),
                "{xml:?}"
            );
        }
        let body = &captured::replies_to("08-fifo.json.txt", "fifo list")[0];
        let end = body.trim_end().len();
        for cut in 0..end {
            assert!(parse_fifo_list(&body[..cut]).is_err(), "cut at {cut}");
        }
        let verbose = &captured::replies_to("08-fifo.json.txt", "fifo list_verbose")[0];
        captured::assert_prefixes_never_panic(verbose, 97, parse_fifo_list);
    }
}
