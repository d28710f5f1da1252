//! The connection access log: one JSON line per connection (or UDP session), written by a
//! background thread so a slow disk never stalls a worker. Listeners that name the same
//! file share one writer.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::SystemTime;

use serde::Serialize;

use sluice_filters::query_log::{QueryLogSink, QueryRecord};

use crate::config::AccessLogTarget;

/// One finished connection, as logged.
#[derive(Serialize)]
pub struct AccessRecord<'a> {
    pub time: String,
    pub listener: &'a str,
    pub protocol: &'a str,
    pub client: std::net::SocketAddr,
    pub cluster: &'a str,
    pub upstream: Option<std::net::SocketAddr>,
    /// Bytes received from the client.
    pub bytes_received: u64,
    /// Bytes sent to the client.
    pub bytes_sent: u64,
    pub duration_ms: f64,
    pub close_reason: &'a str,
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// One finished SQL statement, as the query log writes it.
#[derive(Serialize)]
struct QueryLine<'a> {
    time: String,
    listener: &'a str,
    protocol: &'a str,
    client: std::net::IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'a str>,
    op: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
    /// The digest's hash in hex: the key of `/queries` rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    digest_hash: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tables: Vec<&'a str>,
    duration_ms: f64,
    rows: u64,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqlstate: Option<&'a str>,
}

/// The query log's sink: statements become JSON lines on a log writer thread.
pub struct QueryLogWriter(pub AccessLog);

impl QueryLogSink for QueryLogWriter {
    fn write(&self, record: &QueryRecord<'_>) {
        let line = QueryLine {
            time: now_rfc3339(),
            listener: record.listener,
            protocol: record.protocol.as_str(),
            client: record.client,
            user: record.user,
            database: record.database,
            op: record.op,
            digest: record.digest.map(|(text, _)| text),
            digest_hash: record.digest.map(|(_, hash)| format!("{hash:016x}")),
            tables: record.tables.iter().map(|t| &**t).collect(),
            duration_ms: (record.duration.as_secs_f64() * 1e6).round() / 1e3,
            rows: record.rows,
            outcome: record.outcome.as_str(),
            error_code: record.error.and_then(|(code, _)| code),
            sqlstate: record.error.map(|(_, state)| state),
        };
        self.0.write_json(&line);
    }
}

/// A handle workers send lines to.
#[derive(Clone)]
pub struct AccessLog {
    tx: Sender<Message>,
}

enum Message {
    Line(String),
    /// Everything sent before has been written; flush and stop.
    Close,
}

impl AccessLog {
    pub fn write(&self, record: &AccessRecord<'_>) {
        self.write_json(record);
    }

    pub fn write_json(&self, record: &impl Serialize) {
        if let Ok(mut line) = serde_json::to_string(record) {
            line.push('\n');
            // The writer only goes away at shutdown, after the workers.
            let _ = self.tx.send(Message::Line(line));
        }
    }
}

/// The writer threads, one per distinct target.
#[derive(Default)]
pub struct AccessLogs {
    logs: HashMap<AccessLogTarget, AccessLog>,
    threads: Vec<JoinHandle<()>>,
}

impl AccessLogs {
    pub fn open(&mut self, target: &AccessLogTarget) -> io::Result<AccessLog> {
        if let Some(log) = self.logs.get(target) {
            return Ok(log.clone());
        }
        let out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::File(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
        };
        let (tx, rx) = channel();
        let thread =
            std::thread::Builder::new().name("sluice-access-log".into()).spawn(move || write_lines(rx, out))?;
        self.threads.push(thread);
        let log = AccessLog { tx };
        self.logs.insert(target.clone(), log.clone());
        Ok(log)
    }

    /// Waits until every line sent so far has been written, then stops the writers. Call
    /// after the workers have stopped; later lines are dropped.
    pub fn close(self) {
        for log in self.logs.values() {
            let _ = log.tx.send(Message::Close);
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn write_lines(rx: Receiver<Message>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::new(out);
    let mut next = rx.recv();
    while let Ok(Message::Line(line)) = next {
        let _ = out.write_all(line.as_bytes());
        // Batch what is already queued, then flush so the file is current when idle.
        next = rx.try_recv().map_err(|_| std::sync::mpsc::RecvError);
        if next.is_err() {
            let _ = out.flush();
            next = rx.recv();
        }
    }
    let _ = out.flush();
}
