//! The admin API: /metrics, /stats, /clusters, /config_dump, /ready, /healthz, and what
//! it answers to requests it does not serve.

mod support;

use support::*;

#[test]
fn admin_endpoints_answer() {
    let redis = Redis::start();
    let proxy = Proxy::start(&one_listener("adm_in", "tcp", &[redis.addr()], "    max_connections: 77\n"));
    assert_eq!(redis_cli(proxy.addr("adm_in").port(), &["PING"]).as_deref(), Some("PONG"));

    assert_eq!(proxy.admin("/ready"), (200, "ready\n".into()));
    assert_eq!(proxy.admin("/healthz"), (200, "ok\n".into()));

    let (status, metrics) = proxy.admin("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE sluice_ops_total counter"), "{metrics}");
    assert!(metrics.contains("sluice_op_duration_seconds_bucket{listener=\"adm_in\",protocol=\"tcp\",op=\"connect\""));

    let (status, stats) = proxy.admin("/stats?format=json");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let listener = &stats["listeners"].as_array().unwrap()[0];
    assert_eq!(listener["name"], "adm_in");
    assert_eq!(listener["address"], proxy.addr("adm_in").to_string());
    let totals = stats["metrics"]["sluice_downstream_connections_total"].as_array().unwrap();
    assert!(totals.iter().any(|s| s["labels"]["listener"] == "adm_in" && s["value"] == 1.0), "{totals:?}");

    let (status, dump) = proxy.admin("/config_dump");
    assert_eq!(status, 200);
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(dump["listeners"][0]["max_connections"], 77);
    assert_eq!(dump["listeners"][0]["idle_timeout"], "1h", "defaults are shown");
    assert_eq!(dump["clusters"][0]["endpoints"][0]["address"], redis.addr());

    let (status, clusters) = proxy.admin("/clusters");
    assert_eq!(status, 200);
    let clusters: serde_json::Value = serde_json::from_str(&clusters).unwrap();
    assert_eq!(clusters["clusters"][0]["name"], "adm_in_cluster");
    assert_eq!(clusters["clusters"][0]["endpoints"][0]["total_connections"], 1);

    assert_eq!(proxy.admin("/nope").0, 404);
    assert_eq!(http_request(proxy.handle().admin_addr(), "POST", "/metrics").0, 405);
}

#[test]
fn ready_turns_503_while_draining() {
    let redis = Redis::start();
    let proxy = Proxy::start(&one_listener("drain_in", "tcp", &[redis.addr()], ""));
    // An open connection keeps the drain going for up to drain_timeout (2 s).
    let mut held = std::net::TcpStream::connect(proxy.addr("drain_in")).unwrap();
    assert_eq!(resp_roundtrip(&mut held, &["PING"]).unwrap(), "+PONG");
    proxy.handle().drain();
    assert!(wait_until(std::time::Duration::from_secs(2), || proxy.admin("/ready").0 == 503));
    // The open connection still works during the drain.
    assert_eq!(resp_roundtrip(&mut held, &["PING"]).unwrap(), "+PONG");
    drop(held);
    proxy.drain_and_wait();
}
