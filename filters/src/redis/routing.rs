//! Where a command goes in `mode: pool`, where many clients share a few upstream
//! connections per server and keys are spread over servers (twemproxy's model): to the
//! server of its key, split over several servers and merged (MGET, MSET, DEL, UNLINK,
//! EXISTS, TOUCH), answered by sluice itself (PING, ECHO, QUIT, SELECT 0), or refused
//! with a RESP error saying why.
//!
//! Multi-key commands that cannot be split are sent only when all their keys hash to one
//! server (use hash tags: `{user:1}:a` and `{user:1}:b` share a server), else refused with
//! a `CROSSSLOT` error, as Redis Cluster does; scripts (EVAL, EVALSHA, FCALL) go to the
//! server of their first key. Commands that hold a connection (blocking
//! pops, transactions, pub/sub) are marked for a connection of the client's own
//! ([`Route::Blocking`], [`Route::Transaction`], [`Route::Subscribe`]); pub/sub channels
//! hash like keys, so PUBLISH and SUBSCRIBE of one channel meet on one server. Keyless
//! commands that would reach an arbitrary server (KEYS, FLUSHALL, INFO …) are refused.
//!
//! Key positions: https://redis.io/docs/latest/commands/ (each command's key arguments).

use sluice_codecs::resp::Command;

use super::command_table::{first_key, CommandSpec, BLOCKING, MOVABLE_KEYS, PUBSUB};

/// How a split command's replies are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// MGET: one array element per key, back in the client's key order.
    Elements,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum of the integer replies.
    Sum,
    /// MSET: `+OK` when every part said `+OK`.
    AllOk,
}

/// Where one command goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// To the server of this key (all of the command's keys share it).
    Key(&'a [u8]),
    /// One sub-command per server: `name` with `group`-sized runs of arguments
    /// (`group` 1: keys; 2: key–value pairs) starting at argument 1.
    Split { name: &'static [u8], group: usize, merge: Merge },
    /// Several keys that must share a server; the first decides where it goes.
    SameServer(Vec<&'a [u8]>),
    /// Answered by sluice.
    Local(Local<'a>),
    /// A blocking command: on a connection of the client's own to the server of its keys
    /// (all of which must share it; the first decides).
    Blocking(Vec<&'a [u8]>),
    /// A transaction command: MULTI, EXEC, DISCARD, WATCH (with its keys), UNWATCH.
    Transaction(Tx<'a>),
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: the connection turns into a subscription on the
    /// server of the first channel (or pattern).
    Subscribe(&'a [u8]),
    /// PUBLISH, SPUBLISH: to the server of the channel, placed like a key but never cut
    /// by a prefix route (a channel is no key), so it meets the channel's subscribers.
    Publish(&'a [u8]),
    /// Answered with this error (without the leading `-` and line end).
    Refuse(String),
}

/// The transaction commands.
#[derive(Debug, PartialEq, Eq)]
pub enum Tx<'a> {
    Multi,
    Exec,
    Discard,
    Watch(Vec<&'a [u8]>),
    Unwatch,
}

/// The commands sluice answers itself in pool mode.
#[derive(Debug, PartialEq, Eq)]
pub enum Local<'a> {
    Pong,
    Echo(&'a [u8]),
    Ok,
    Quit,
    /// AUTH [user] password (user `default` when left out).
    Auth {
        user: Option<&'a [u8]>,
        password: &'a [u8],
    },
    /// HELLO [protover [AUTH user password] [SETNAME name]].
    Hello {
        protover: Option<&'a [u8]>,
        auth: Option<(&'a [u8], &'a [u8])>,
    },
}

/// Decides where `command` goes; `spec` is its entry in the command table (the caller
/// looked it up already, for its stats).
pub fn route<'a>(command: &Command<'a>, spec: Option<&'static CommandSpec>) -> Route<'a> {
    let Some(name) = command.name() else { return Route::Refuse("ERR empty command".into()) };
    let Some(spec) = spec else {
        return Route::Refuse(format!("ERR sluice: unknown command '{}' in pool mode", lossy(name)));
    };
    let argc = command.argc();
    match spec.name {
        "PING" => {
            return match (argc, command.arg(1)) {
                (1, _) => Route::Local(Local::Pong),
                (2, Some(message)) => Route::Local(Local::Echo(message)),
                _ => arity(name),
            }
        }
        "ECHO" => {
            return match (argc, command.arg(1)) {
                (2, Some(message)) => Route::Local(Local::Echo(message)),
                _ => arity(name),
            }
        }
        "QUIT" => return Route::Local(Local::Quit),
        "AUTH" => {
            return match (argc, command.arg(1), command.arg(2)) {
                (2, Some(password), _) => Route::Local(Local::Auth { user: None, password }),
                (3, Some(user), Some(password)) => Route::Local(Local::Auth { user: Some(user), password }),
                _ => arity(name),
            }
        }
        "HELLO" => return hello(command),
        "SELECT" => {
            return match command.arg(1) {
                Some(b"0") if argc == 2 => Route::Local(Local::Ok),
                Some(_) if argc == 2 => Route::Refuse("ERR sluice: only database 0 exists in pool mode".into()),
                _ => arity(name),
            }
        }
        _ => {}
    }
    if let Some((split, group, merge)) = SPLIT.iter().find(|(split, ..)| *split == spec.name) {
        let keys = argc.saturating_sub(1);
        if keys == 0 || keys % group != 0 {
            return arity(name);
        }
        return Route::Split { name: split.as_bytes(), group: *group, merge: *merge };
    }
    if spec.arity > 0 && argc != spec.arity as usize || spec.arity < 0 && argc < spec.arity.unsigned_abs() as usize {
        return arity(name);
    }
    match spec.name {
        "MULTI" => return Route::Transaction(Tx::Multi),
        "EXEC" => return Route::Transaction(Tx::Exec),
        "DISCARD" => return Route::Transaction(Tx::Discard),
        "UNWATCH" => return Route::Transaction(Tx::Unwatch),
        "WATCH" => return Route::Transaction(Tx::Watch(command.args().skip(1).collect())),
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => {
            return command.arg(1).map_or_else(|| arity(name), Route::Subscribe);
        }
        "PUBLISH" | "SPUBLISH" => return command.arg(1).map_or_else(|| arity(name), Route::Publish),
        // All or nothing across its keys, so never split: sent whole when every key lives
        // on one server (hash tags), else refused as CROSSSLOT.
        "MSETNX" => {
            let keys: Vec<&'a [u8]> = command.args().skip(1).step_by(2).collect();
            if argc % 2 == 0 {
                return arity(name);
            }
            return match keys.as_slice() {
                [key] => Route::Key(key),
                _ => Route::SameServer(keys),
            };
        }
        _ => {}
    }
    if spec.has(PUBSUB) {
        return Route::Refuse(format!(
            "ERR sluice: {} outside a subscription is not supported in pool mode",
            spec.name
        ));
    }
    if spec.has(BLOCKING) {
        return match blocking_keys(spec.name, command) {
            Some(keys) if !keys.is_empty() => Route::Blocking(keys),
            _ => keyless(spec),
        };
    }
    // Scripts go where their first key lives (twemproxy's and Envoy's rule): a script
    // touching keys of other servers fails there, as it would on one of them alone.
    if matches!(spec.name, "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO") {
        return match first_key(spec, command.args()) {
            Some(key) => Route::Key(key),
            None => keyless(spec),
        };
    }
    if let Some(keys) = all_keys(spec, command) {
        return match keys.as_slice() {
            [] => keyless(spec),
            [key] => Route::Key(key),
            _ => Route::SameServer(keys),
        };
    }
    match first_key(spec, command.args()) {
        Some(key) => Route::Key(key),
        None => keyless(spec),
    }
}

/// HELLO [protover [AUTH user password] [SETNAME name]].
fn hello<'a>(command: &Command<'a>) -> Route<'a> {
    let args: Vec<&'a [u8]> = command.args().skip(1).collect();
    let mut auth = None;
    let mut i = 1;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"AUTH") && args.len() > i + 2 {
            auth = Some((args[i + 1], args[i + 2]));
            i += 3;
        } else if args[i].eq_ignore_ascii_case(b"SETNAME") && args.len() > i + 1 {
            i += 2;
        } else {
            return Route::Refuse("ERR Syntax error in HELLO option".into());
        }
    }
    Route::Local(Local::Hello { protover: args.first().copied(), auth })
}

/// Commands split over servers: name, arguments per key, merge.
const SPLIT: &[(&str, usize, Merge)] = &[
    ("MGET", 1, Merge::Elements),
    ("DEL", 1, Merge::Sum),
    ("UNLINK", 1, Merge::Sum),
    ("EXISTS", 1, Merge::Sum),
    ("TOUCH", 1, Merge::Sum),
    ("MSET", 2, Merge::AllOk),
];

/// The keys of a blocking command (every one must share a server).
fn blocking_keys<'a>(name: &str, command: &Command<'a>) -> Option<Vec<&'a [u8]>> {
    let args: Vec<&'a [u8]> = command.args().collect();
    let numkeys = |at: usize| -> Option<Vec<&'a [u8]>> {
        let n: usize = std::str::from_utf8(args.get(at)?).ok()?.parse().ok()?;
        args.get(at + 1..at + 1 + n).map(<[_]>::to_vec)
    };
    match name {
        // Keys, then the timeout.
        "BLPOP" | "BRPOP" | "BZPOPMIN" | "BZPOPMAX" => args.get(1..args.len().saturating_sub(1)).map(<[_]>::to_vec),
        "BLMOVE" | "BRPOPLPUSH" => args.get(1..3).map(<[_]>::to_vec),
        "BLMPOP" | "BZMPOP" => numkeys(2),
        // Keys follow STREAMS, then as many ids.
        "XREAD" | "XREADGROUP" => {
            let at = args.iter().position(|a| a.eq_ignore_ascii_case(b"STREAMS"))? + 1;
            let rest = args.get(at..)?;
            Some(rest[..rest.len() / 2].to_vec())
        }
        _ => None,
    }
}

fn keyless(spec: &CommandSpec) -> Route<'static> {
    Route::Refuse(format!("ERR sluice: {} has no key to route by in pool mode", spec.name))
}

fn arity(name: &[u8]) -> Route<'static> {
    Route::Refuse(format!("ERR wrong number of arguments for '{}' command", lossy(name).to_lowercase()))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned()
}

/// Every key of the commands that take several (beyond the split ones), or `None` when
/// the command takes at most its first key.
fn all_keys<'a>(spec: &CommandSpec, command: &Command<'a>) -> Option<Vec<&'a [u8]>> {
    const LISTED: &[&str] = &[
        "RENAME",
        "RENAMENX",
        "SMOVE",
        "LMOVE",
        "RPOPLPUSH",
        "COPY",
        "LCS",
        "GEOSEARCHSTORE",
        "SDIFF",
        "SINTER",
        "SUNION",
        "SDIFFSTORE",
        "SINTERSTORE",
        "SUNIONSTORE",
        "PFCOUNT",
        "PFMERGE",
        "BITOP",
        "ZUNIONSTORE",
        "ZINTERSTORE",
        "ZDIFFSTORE",
        "ZUNION",
        "ZINTER",
        "ZDIFF",
        "SINTERCARD",
        "ZINTERCARD",
        "LMPOP",
        "ZMPOP",
    ];
    // Most commands take one key: no argument list for them.
    if !LISTED.contains(&spec.name) {
        return spec.has(MOVABLE_KEYS).then(Vec::new);
    }
    let args: Vec<&'a [u8]> = command.args().collect();
    let from = |start: usize| args.get(start..).map(<[_]>::to_vec).unwrap_or_default();
    let numkeys = |at: usize, first: usize| -> Vec<&'a [u8]> {
        let n = args.get(at).and_then(|n| std::str::from_utf8(n).ok()).and_then(|n| n.parse::<usize>().ok());
        match n {
            Some(n) => args.get(first..first.saturating_add(n)).map(<[_]>::to_vec).unwrap_or_default(),
            None => Vec::new(),
        }
    };
    Some(match spec.name {
        "RENAME" | "RENAMENX" | "SMOVE" | "LMOVE" | "RPOPLPUSH" | "COPY" | "LCS" | "GEOSEARCHSTORE" => {
            from(1).into_iter().take(2).collect()
        }
        "SDIFF" | "SINTER" | "SUNION" | "SDIFFSTORE" | "SINTERSTORE" | "SUNIONSTORE" | "PFCOUNT" | "PFMERGE" => from(1),
        "BITOP" => from(2),
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" => {
            let mut keys = from(1).into_iter().take(1).collect::<Vec<_>>();
            keys.extend(numkeys(2, 3));
            keys
        }
        "ZUNION" | "ZINTER" | "ZDIFF" | "SINTERCARD" | "ZINTERCARD" | "LMPOP" | "ZMPOP" => numkeys(1, 2),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::command_table::lookup;
    use super::*;

    fn command(line: &str) -> Vec<u8> {
        let mut frame = format!("*{}\r\n", line.split(' ').count());
        for arg in line.split(' ') {
            frame.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        frame.into_bytes()
    }

    fn routed(line: &str) -> String {
        let frame = command(line);
        let command = Command::parse(&frame).unwrap();
        match route(&command, lookup(command.args())) {
            Route::Key(key) => format!("key {}", String::from_utf8_lossy(key)),
            Route::Split { name, group, merge } => format!("split {} {group} {merge:?}", String::from_utf8_lossy(name)),
            Route::SameServer(keys) => {
                format!("same {}", keys.iter().map(|k| String::from_utf8_lossy(k)).collect::<Vec<_>>().join(","))
            }
            Route::Local(local) => format!("local {local:?}"),
            Route::Blocking(keys) => {
                format!("blocking {}", keys.iter().map(|k| String::from_utf8_lossy(k)).collect::<Vec<_>>().join(","))
            }
            Route::Transaction(tx) => format!("tx {tx:?}"),
            Route::Subscribe(channel) => format!("subscribe {}", String::from_utf8_lossy(channel)),
            Route::Publish(channel) => format!("publish {}", String::from_utf8_lossy(channel)),
            Route::Refuse(error) => format!("refuse {error}"),
        }
    }

    #[test]
    fn commands_go_where_their_keys_are() {
        assert_eq!(routed("GET user:1"), "key user:1");
        assert_eq!(routed("set k v EX 10"), "key k");
        assert_eq!(routed("HSET h f v f2 v2"), "key h");
        assert_eq!(routed("MGET a b c"), "split MGET 1 Elements");
        assert_eq!(routed("MSET a 1 b 2"), "split MSET 2 AllOk");
        assert_eq!(routed("del a"), "split DEL 1 Sum");
        assert_eq!(routed("RENAME a b"), "same a,b");
        assert_eq!(routed("SUNION a b c"), "same a,b,c");
        assert_eq!(routed("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), "same d,a,b");
        assert_eq!(routed("EVAL return 2 {t}a {t}b x"), "key {t}a");
        assert_eq!(routed("EVALSHA abc 2 a b"), "key a");
        assert_eq!(routed("FCALL f 1 k arg"), "key k");
        assert_eq!(routed("BITOP AND d a b"), "same d,a,b");
    }

    #[test]
    fn some_are_answered_here_and_some_refused() {
        assert_eq!(routed("PING"), "local Pong");
        assert_eq!(routed("PING hi"), "local Echo([104, 105])");
        assert_eq!(routed("SELECT 0"), "local Ok");
        assert_eq!(routed("QUIT"), "local Quit");
        assert_eq!(routed("AUTH pw"), "local Auth { user: None, password: [112, 119] }");
        assert_eq!(routed("AUTH u pw"), "local Auth { user: Some([117]), password: [112, 119] }");
        assert_eq!(
            routed("HELLO 2 AUTH u pw SETNAME x"),
            "local Hello { protover: Some([50]), auth: Some(([117], [112, 119])) }"
        );
        assert_eq!(routed("HELLO 3 SETNAME"), "refuse ERR Syntax error in HELLO option");
        assert!(routed("SELECT 1").starts_with("refuse ERR sluice: only database 0"));
        assert_eq!(routed("MULTI"), "tx Multi");
        assert_eq!(routed("exec"), "tx Exec");
        assert_eq!(routed("WATCH a b"), "tx Watch([[97], [98]])");
        assert_eq!(routed("BLPOP q1 q2 0"), "blocking q1,q2");
        assert_eq!(routed("BLMOVE a b LEFT RIGHT 0"), "blocking a,b");
        assert_eq!(routed("BZMPOP 1 2 z1 z2 MIN"), "blocking z1,z2");
        assert_eq!(routed("XREAD BLOCK 0 STREAMS s1 s2 $ $"), "blocking s1,s2");
        assert_eq!(routed("SUBSCRIBE news sport"), "subscribe news");
        assert_eq!(routed("PUBLISH news hi"), "publish news");
        assert!(routed("PUBSUB CHANNELS").contains("outside a subscription"));
        assert!(routed("KEYS *").contains("no key to route by"));
        assert!(routed("EVAL return 0").contains("no key to route by"));
        assert_eq!(routed("MSETNX {a}1 1 {a}2 2"), "same {a}1,{a}2");
        assert_eq!(routed("MSETNX a 1"), "key a");
        assert_eq!(routed("MSETNX a 1 b"), "refuse ERR wrong number of arguments for 'msetnx' command");
        assert_eq!(routed("MGET"), "refuse ERR wrong number of arguments for 'mget' command");
        assert_eq!(routed("MSET a"), "refuse ERR wrong number of arguments for 'mset' command");
        assert_eq!(routed("GET"), "refuse ERR wrong number of arguments for 'get' command");
        assert!(routed("NOSUCH x").contains("unknown command 'NOSUCH'"));
    }
}
