//! TLS termination without sockets: every captured plain session, replayed as the client
//! of a TLS-terminating listener would send it (an SSLRequest, then the login and the
//! authentication rounds numbered one higher), must reach the server exactly as captured,
//! and the server's packets must reach the client renumbered until authentication ends.

use std::time::Instant;

use bytes::BytesMut;
use sluice_codecs::mysql::{Direction, MysqlLimits, Session, State};

use super::tests::{client_ip, feed, fixture, fixture_names, listener, packets, wire_order};
use super::{MysqlFilter, MysqlListener};
use crate::filter::FilterStatus;
use crate::policy::{Action, Matcher, Rule};
use crate::stream::{StreamFilter, StreamIo, WriteQueue};

const CLIENT_SSL_BYTE1: u8 = 0x08;

fn tls_listener(rules: Vec<Rule>) -> std::sync::Arc<MysqlListener> {
    let mut listener = std::sync::Arc::into_inner(listener(rules)).expect("fresh listener");
    listener.terminates_tls = true;
    std::sync::Arc::new(listener)
}

/// The greeting's low capability bytes (CLIENT_SSL is bit 3 of the second one).
fn greeting_caps_low(packet: &[u8]) -> u16 {
    let version_end = packet[5..].iter().position(|&b| b == 0).unwrap();
    let low = 5 + version_end + 1 + 4 + 8 + 1;
    u16::from_le_bytes([packet[low], packet[low + 1]])
}

fn with_seq(packet: &[u8], seq: u8) -> Vec<u8> {
    let mut p = packet.to_vec();
    p[3] = seq;
    p
}

/// Replays a fixture through a terminating listener; returns the filter.
fn replay_terminated(name: &str, rules: Vec<Rule>) -> MysqlFilter {
    let client = fixture(&format!("{name}.client"));
    let server = fixture(&format!("{name}.server"));
    let order = wire_order(&client, &server);
    // An enforcing listener still hides CLIENT_COMPRESS.
    let hidden = if rules.is_empty() { 0 } else { 0x0020 };
    let listener = tls_listener(rules);
    let mut filter = MysqlFilter::new(listener.clone(), client_ip());
    // Follows the captured (server-side) numbering, to know which packets are in the login.
    let mut session = Session::new(MysqlLimits::default());
    let (mut client_in, mut server_in) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    let tails = order.len() - 2;
    for (i, (dir, bytes)) in order.iter().enumerate() {
        let state = if i < tails { session.state() } else { State::Idle };
        if i < tails {
            session.feed(*dir, bytes).unwrap();
        }
        let connection_phase = matches!(state, State::AwaitLogin | State::Authenticating);
        match (dir, state) {
            (Direction::Server, State::AwaitGreeting) => {
                let (_, down) = feed(&mut filter, *dir, bytes, 7, now, &mut server_in);
                let caps = greeting_caps_low(&down);
                assert_eq!(caps, greeting_caps_low(bytes) & !hidden | 0x0800, "{name}: CLIENT_SSL offered");
                assert_eq!(down.len(), bytes.len());
            }
            (Direction::Client, State::AwaitLogin) => {
                // The SSLRequest: the login's first 32 bytes with CLIENT_SSL, sequence 1,
                // read together with the start of the TLS handshake.
                let mut ssl_request = vec![32, 0, 0, 1];
                ssl_request.extend_from_slice(&bytes[4..36]);
                ssl_request[5] |= CLIENT_SSL_BYTE1;
                let hello = b"\x16\x03\x01\x00\x05hello";
                client_in.extend_from_slice(&ssl_request);
                client_in.extend_from_slice(hello);
                let (mut up, mut down) = (WriteQueue::default(), WriteQueue::default());
                let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
                let status = filter.on_downstream(&mut client_in, false, &mut io);
                assert_eq!(status, FilterStatus::StartDownstreamTls, "{name}");
                assert!(up.is_empty() && down.is_empty(), "{name}: the SSLRequest stays here");
                assert_eq!(&client_in[..], hello, "{name}: the TLS bytes are left for the driver");
                client_in.clear();
                // The decrypted login, as the client numbers and flags it.
                let mut login = with_seq(bytes, 2);
                login[5] |= CLIENT_SSL_BYTE1;
                let (up, down) = feed(&mut filter, *dir, &login, 7, now, &mut client_in);
                assert_eq!(up, bytes.to_vec(), "{name}: the server gets the login it would get without TLS");
                assert!(down.is_empty());
            }
            (Direction::Client, _) if connection_phase => {
                let (up, _) = feed(&mut filter, *dir, &with_seq(bytes, bytes[3] + 1), 7, now, &mut client_in);
                assert_eq!(up, bytes.to_vec(), "{name}: auth packets go up one lower");
            }
            (Direction::Server, _) if connection_phase => {
                let (_, down) = feed(&mut filter, *dir, bytes, 7, now, &mut server_in);
                assert_eq!(down, with_seq(bytes, bytes[3] + 1), "{name}: auth packets go down one higher");
            }
            (Direction::Client, _) => {
                let (up, _) = feed(&mut filter, *dir, bytes, 7, now, &mut client_in);
                assert_eq!(up, bytes.to_vec(), "{name}: commands pass unchanged");
            }
            (Direction::Server, _) => {
                let (_, down) = feed(&mut filter, *dir, bytes, 7, now, &mut server_in);
                assert_eq!(down, bytes.to_vec(), "{name}: responses pass unchanged");
            }
        }
    }
    filter
}

#[test]
fn every_fixture_logs_in_through_a_terminated_tls_session() {
    for name in fixture_names() {
        if name == "tls_request" {
            continue;
        }
        let filter = replay_terminated(&name, Vec::new());
        assert_eq!(filter.responses_owed(), 0, "{name}: every forwarded command was answered");
        assert!(!matches!(filter.state(), State::Failed | State::Opaque(sluice_codecs::mysql::Opaque::Tls)), "{name}");
    }
}

#[test]
fn rules_apply_inside_a_terminated_tls_session() {
    let deny = Rule { matcher: Matcher { ops: vec!["DROP".into()], ..Default::default() }, action: Action::Deny };
    let mut filter = replay_terminated("auth_switch_ed25519", vec![deny]);
    assert_eq!(filter.state(), State::Idle, "logged in after an AuthSwitch round");
    // A DROP is refused with an ERR, sequence 1, and never reaches the server.
    let (mut input, now) = (BytesMut::new(), Instant::now());
    let drop = b"\x0d\x00\x00\x00\x03DROP TABLE t";
    let (up, down) = feed(&mut filter, Direction::Client, drop, 64, now, &mut input);
    assert!(up.is_empty());
    assert_eq!(down[3], 1);
    assert_eq!(down[4], 0xff, "an ERR packet");
}

#[test]
fn a_plain_client_on_a_terminating_listener_is_not_renumbered() {
    let (client, server) = (fixture("text_queries.client"), fixture("text_queries.server"));
    let (client, server) = (packets(&client), packets(&server));
    let mut filter = MysqlFilter::new(tls_listener(Vec::new()), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    feed(&mut filter, Direction::Server, server[0], 4096, now, &mut s);
    let (up, _) = feed(&mut filter, Direction::Client, client[0], 4096, now, &mut c);
    assert_eq!(up, client[0].to_vec());
    let (_, down) = feed(&mut filter, Direction::Server, server[1], 4096, now, &mut s);
    assert_eq!(down, server[1].to_vec());
    assert_eq!(filter.state(), State::Idle);
}

fn originating_listener(terminates: bool) -> std::sync::Arc<MysqlListener> {
    let mut listener = std::sync::Arc::into_inner(listener(Vec::new())).expect("fresh listener");
    listener.originates_tls = true;
    listener.terminates_tls = terminates;
    std::sync::Arc::new(listener)
}

/// Replays a fixture as a plain client of a listener whose cluster originates TLS: the
/// server gets sluice's SSLRequest, then (inside the TLS the driver starts) the login and
/// the authentication rounds numbered one higher, and the client gets the server's packets
/// one lower until authentication ends.
fn replay_originated(name: &str) -> MysqlFilter {
    let client = fixture(&format!("{name}.client"));
    let server = fixture(&format!("{name}.server"));
    let order = wire_order(&client, &server);
    let mut filter = MysqlFilter::new(originating_listener(false), client_ip());
    let mut session = Session::new(MysqlLimits::default());
    let (mut client_in, mut server_in) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    let tails = order.len() - 2;
    for (i, (dir, bytes)) in order.iter().enumerate() {
        let state = if i < tails { session.state() } else { State::Idle };
        if i < tails {
            session.feed(*dir, bytes).unwrap();
        }
        let connection_phase = matches!(state, State::AwaitLogin | State::Authenticating);
        match (dir, state) {
            (Direction::Server, State::AwaitGreeting) => {
                let (_, down) = feed(&mut filter, *dir, bytes, 7, now, &mut server_in);
                assert_eq!(greeting_caps_low(&down), greeting_caps_low(bytes) & !0x0800, "{name}: CLIENT_SSL hidden");
            }
            (Direction::Client, State::AwaitLogin) => {
                client_in.extend_from_slice(bytes);
                let (mut up, mut down) = (WriteQueue::default(), WriteQueue::default());
                let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
                let status = filter.on_downstream(&mut client_in, false, &mut io);
                assert_eq!(status, FilterStatus::StartUpstreamTls, "{name}");
                let mut ssl_request = vec![32, 0, 0, 1];
                ssl_request.extend_from_slice(&bytes[4..36]);
                ssl_request[5] |= CLIENT_SSL_BYTE1;
                assert_eq!(up.take_all(), ssl_request, "{name}: sluice's SSLRequest goes first");
                assert!(down.is_empty());
                assert_eq!(&client_in[..], &bytes[..], "{name}: the login waits for the session");
                // The driver offers the login again once the TLS session is set up.
                let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
                let status = filter.on_downstream(&mut client_in, false, &mut io);
                assert_eq!(status, FilterStatus::Continue);
                let mut login = with_seq(bytes, 2);
                login[5] |= CLIENT_SSL_BYTE1;
                assert_eq!(up.take_all(), login, "{name}: the login follows at sequence 2, claiming TLS");
            }
            (Direction::Client, _) if connection_phase => {
                let (up, _) = feed(&mut filter, *dir, bytes, 7, now, &mut client_in);
                assert_eq!(up, with_seq(bytes, bytes[3] + 1), "{name}: auth packets go up one higher");
            }
            (Direction::Server, _) if connection_phase => {
                let (_, down) = feed(&mut filter, *dir, &with_seq(bytes, bytes[3] + 1), 7, now, &mut server_in);
                assert_eq!(down, bytes.to_vec(), "{name}: auth packets go down one lower");
            }
            (Direction::Client, _) => {
                let (up, _) = feed(&mut filter, *dir, bytes, 7, now, &mut client_in);
                assert_eq!(up, bytes.to_vec(), "{name}: commands pass unchanged");
            }
            (Direction::Server, _) => {
                let (_, down) = feed(&mut filter, *dir, bytes, 7, now, &mut server_in);
                assert_eq!(down, bytes.to_vec(), "{name}: responses pass unchanged");
            }
        }
    }
    filter
}

#[test]
fn every_fixture_logs_in_over_tls_that_sluice_originates() {
    for name in fixture_names() {
        if name == "tls_request" {
            continue;
        }
        let filter = replay_originated(&name);
        assert_eq!(filter.responses_owed(), 0, "{name}: every forwarded command was answered");
        assert!(!matches!(filter.state(), State::Failed | State::Opaque(sluice_codecs::mysql::Opaque::Tls)), "{name}");
    }
}

#[test]
fn a_server_that_does_not_offer_tls_gets_no_login() {
    let server = fixture("text_queries.server");
    let greeting = packets(&server)[0].to_vec();
    // The greeting without CLIENT_SSL.
    let version_end = greeting[5..].iter().position(|&b| b == 0).unwrap();
    let mut plain = greeting.clone();
    plain[5 + version_end + 1 + 4 + 8 + 1 + 1] &= !CLIENT_SSL_BYTE1;
    let mut filter = MysqlFilter::new(originating_listener(true), client_ip());
    let (mut input, now) = (BytesMut::from(&plain[..]), Instant::now());
    let (mut up, mut down) = (WriteQueue::default(), WriteQueue::default());
    let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
    let status = filter.on_upstream(&mut input, false, &mut io);
    assert_eq!(status, FilterStatus::Close(crate::filter::CloseReason::UpstreamTlsError));
    let err = down.take_all();
    assert_eq!((err[3], err[4]), (0, 0xff), "an ERR in the greeting's place");
    assert!(String::from_utf8_lossy(&err).contains("the server does not offer TLS"));
}

#[test]
fn tls_on_both_hops_keeps_the_client_numbering() {
    let (client, server) = (fixture("text_queries.client"), fixture("text_queries.server"));
    let (client, server) = (packets(&client), packets(&server));
    let mut filter = MysqlFilter::new(originating_listener(true), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    let (_, down) = feed(&mut filter, Direction::Server, server[0], 4096, now, &mut s);
    assert_ne!(greeting_caps_low(&down) & 0x0800, 0, "CLIENT_SSL offered to the client");
    // The client's SSLRequest is answered here; its decrypted login (sequence 2) makes
    // sluice ask the server, and then goes at sequence 2 as it is.
    let mut ssl_request = vec![32, 0, 0, 1];
    ssl_request.extend_from_slice(&client[0][4..36]);
    ssl_request[5] |= CLIENT_SSL_BYTE1;
    c.extend_from_slice(&ssl_request);
    let (mut up, mut dn) = (WriteQueue::default(), WriteQueue::default());
    let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut dn };
    assert_eq!(filter.on_downstream(&mut c, false, &mut io), FilterStatus::StartDownstreamTls);
    let mut login = with_seq(client[0], 2);
    login[5] |= CLIENT_SSL_BYTE1;
    c.extend_from_slice(&login);
    let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut dn };
    assert_eq!(filter.on_downstream(&mut c, false, &mut io), FilterStatus::StartUpstreamTls);
    assert_eq!(up.take_all(), ssl_request, "the server gets the same SSLRequest");
    let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut dn };
    filter.on_downstream(&mut c, false, &mut io);
    assert_eq!(up.take_all(), login, "the login goes unchanged");
    let ok = with_seq(server[1], 3);
    let (_, down) = feed(&mut filter, Direction::Server, &ok, 4096, now, &mut s);
    assert_eq!(down, ok, "the server's numbering is the client's");
    assert_eq!(filter.state(), State::Idle);
}
