mod support;
use locus_esl::Event;
use locus_sim::{Sim, SimConfig};
use support::*;

fn nonvar(e: &Event) -> Vec<String> {
    e.headers().filter(|(k, _)| !k.starts_with("variable_")).map(|(k, _)| k.to_owned()).collect()
}
fn vars(e: &Event) -> Vec<String> {
    e.headers().filter(|(k, _)| k.starts_with("variable_")).map(|(k, _)| k.to_owned()).collect()
}

#[tokio::test]
async fn explore_basic_call() {
    let sim = Sim::start(SimConfig { heartbeat: None, ..SimConfig::default() }).await.unwrap();
    sim.register("1001").await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.register("1001").await.unwrap();
    sim.register("1000").await.unwrap();
    let call = sim.call("1000", "1001").await.unwrap();
    sim.answer(&call).await.unwrap();
    sim.hangup(&call).await.unwrap();
    sim.unregister("1000").await.unwrap();
    let evs = c.events_until(|e| e.subclass() == Some("sofia::unregister")).await;
    let cap: Vec<Event> = capture_events("02-register-and-basic-call.json.txt").into_iter()
        .filter(|e| !matches!(e.name(), Some("HEARTBEAT") | Some("RE_SCHEDULE")))
        .filter(|e| !(e.name() == Some("API") && matches!(e.get("API-Command"), Some("show"))))
        .collect();
    let sk: Vec<String> = evs.iter().map(kind).collect();
    let ck: Vec<String> = cap.iter().map(kind).collect();
    println!("lens sim {} cap {}", sk.len(), ck.len());
    for i in 0..sk.len().max(ck.len()) {
        let s = sk.get(i).cloned().unwrap_or_default();
        let c = ck.get(i).cloned().unwrap_or_default();
        if s != c { println!("KIND DIFF {i}: sim {s} cap {c}"); }
    }
    for (i, (s, c)) in evs.iter().zip(cap.iter()).enumerate() {
        let (sn, cn) = (nonvar(s), nonvar(c));
        if sn != cn {
            println!("HDR DIFF {i} {}:\n  sim-only {:?}\n  cap-only {:?}", kind(c),
                sn.iter().filter(|x| !cn.contains(x)).collect::<Vec<_>>(),
                cn.iter().filter(|x| !sn.contains(x)).collect::<Vec<_>>());
            if sn.iter().filter(|x| cn.contains(x)).collect::<Vec<_>>() != cn.iter().filter(|x| sn.contains(x)).collect::<Vec<_>>() { println!("   ORDER differs"); }
        }
        let (sv, cv) = (vars(s), vars(c));
        let extra: Vec<_> = sv.iter().filter(|x| !cv.contains(x)).collect();
        let missing: Vec<_> = cv.iter().filter(|x| !sv.contains(x)).collect();
        if !extra.is_empty() || !missing.is_empty() {
            println!("VAR DIFF {i} {}: extra {:?}\n   missing {:?}", kind(c), extra, missing);
        }
    }
}
