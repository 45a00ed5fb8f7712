mod support;
use locus_esl::Event;
use locus_sim::{Sim, SimConfig};
use support::*;

fn cap(name: &str, skip: &[&str]) -> Vec<Event> {
    capture_events(name).into_iter()
        .filter(|e| !matches!(e.name(), Some("HEARTBEAT") | Some("RE_SCHEDULE")))
        .filter(|e| !skip.contains(&kind(e).as_str()))
        .collect()
}

fn show(sim: &[Event], cap: &[Event]) {
    let n = if std::env::var("ALL").is_ok() { sim.len().max(cap.len()) } else { 0 };
    for i in 0..n {
        let s = sim.get(i).map(|e| format!("{} {}", kind(e), e.get("Application").or(e.get("Action")).or(e.get("CC-Action")).or(e.get("FIFO-Action")).or(e.get("API-Command")).unwrap_or(""))).unwrap_or_default();
        let c = cap.get(i).map(|e| format!("{} {}", kind(e), e.get("Application").or(e.get("Action")).or(e.get("CC-Action")).or(e.get("FIFO-Action")).or(e.get("API-Command")).unwrap_or(""))).unwrap_or_default();
        println!("{i:3} {} {:50} | {}", if s == c { " " } else { "X" }, s, c);
    }
    for d in compare(sim, cap) { println!("DIFF {d}"); }
    let (a, b) = (per_leg(sim), per_leg(cap));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        println!("--- leg {i}");
        let n = x.len().max(y.len());
        for j in 0..n {
            let f = |e: Option<&Event>| e.map(|e| format!("{} {}", kind(e), e.get("Application").or(e.get("Action")).or(e.get("CC-Action")).or(e.get("FIFO-Action")).or(e.get("API-Command")).or(e.get("Channel-State").filter(|_| e.name()==Some("CHANNEL_STATE"))).unwrap_or(""))).unwrap_or_default();
            let (p, q) = (f(x.get(j)), f(y.get(j)));
            if std::env::var("ALL").is_ok() || p != q { println!("{j:3} {} {:50} | {}", if p == q { " " } else { "X" }, p, q); }
        }
    }
    for d in compare_per_leg(sim, cap) { println!("LEGDIFF {}", &d[..d.len().min(600)]); }
}

#[tokio::test]
async fn explore() {
    let which = std::env::var("SCEN").unwrap_or_default();
    let sim = Sim::start(SimConfig { heartbeat: None, ..SimConfig::default() }).await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let file = match which.as_str() {
        "03" | "04" => {
            if which == "04" { drop(c); sim.register("1001").await.unwrap(); c = Client::ready(sim.esl_addr(), Some("json ALL")).await; }
            sim.register("1001").await.unwrap();
            let _call = sim.call("1000", "1001").await.unwrap();
            let p = if which == "03" { sim.intercept_group("1002", "techsupport").await.unwrap() } else { sim.intercept_ext("1002", "1001").await.unwrap() };
            sim.hangup(&p).await.unwrap();
            if which == "03" { "03-group-intercept.json.txt" } else { "04-directed-intercept.json.txt" }
        }
        "05" => {
            let p = sim.valet_park("1000", "valet_parking_lot", "6001").await.unwrap();
            let r = sim.valet_retrieve("1002", "valet_parking_lot", "6001").await.unwrap();
            let _ = p;
            sim.hangup(&r).await.unwrap();
            "05-valet-park.json.txt"
        }
        "06" => {
            let a = sim.conference_join("1000", "3000").await.unwrap();
            let b = sim.conference_join("1002", "3000").await.unwrap();
            sim.conference_leave(&b).await.unwrap();
            sim.conference_leave(&a).await.unwrap();
            "06-conference.json.txt"
        }
        "08" => {
            let _a = sim.fifo_push("1000", "5900").await.unwrap();
            let k = sim.fifo_pop("1002", "5900").await.unwrap();
            sim.hangup(&k).await.unwrap();
            "08-fifo.json.txt"
        }
        "12" => {
            sim.register("1001").await.unwrap();
            let call = sim.call("1000", "1001").await.unwrap();
            sim.answer(&call).await.unwrap();
            sim.hold(&call).await.unwrap();
            sim.unhold(&call).await.unwrap();
            sim.hangup(&call).await.unwrap();
            "12-hold-unhold.json.txt"
        }
        "13" => {
            sim.register("1001").await.unwrap();
            let p = sim.originate_park("1001").await.unwrap();
            sim.hangup(&p).await.unwrap();
            "13-originate-park.json.txt"
        }
        _ => return,
    };
    sim.heartbeat().await;
    let evs = events_until_marker(&mut c).await;
    let skip: Vec<&str> = std::env::var("SKIP").map(|s| s.split(',').map(|x| Box::leak(x.to_owned().into_boxed_str()) as &str).collect()).unwrap_or_default();
    show(&evs, &scenario_events(file, &skip));
}
