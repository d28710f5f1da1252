//! What sluice knows about each Redis command: its op name (with the subcommand for
//! container commands such as `CONFIG GET`), arity, where its first key is, and the flags
//! the filter acts on. The table itself (`commands.rs`) is generated from a real server's
//! `COMMAND` reply; lookups are case-insensitive hash probes that allocate nothing.
//!
//! Spec: <https://redis.io/docs/latest/commands/command/> (first key, flags) and
//! <https://redis.io/docs/latest/develop/reference/key-specs/> (movable keys).

use super::commands::COMMANDS;

pub const NONE: u8 = 0;
pub const WRITE: u8 = 1 << 0;
pub const READONLY: u8 = 1 << 1;
pub const PUBSUB: u8 = 1 << 2;
pub const BLOCKING: u8 = 1 << 3;
/// Keys are found by parsing the arguments (EVAL's numkeys, XREAD's STREAMS).
pub const MOVABLE_KEYS: u8 = 1 << 4;
pub const ADMIN: u8 = 1 << 5;

#[derive(Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Upper-case; a subcommand is `PARENT SUB`.
    pub name: &'static str,
    /// Redis arity: exact argument count (name included) when positive, a minimum when
    /// negative.
    pub arity: i16,
    /// Position of the first key (0 when the command takes none or they move).
    pub first_key: u8,
    pub flags: u8,
    pub has_subcommands: bool,
}

impl CommandSpec {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The longest command name (with a subcommand: `PARENT SUB`) the table can hold.
const MAX_NAME: usize = 40;

/// `name` (and ` sub`) in upper case, in `buf`; `None` when too long to be in the table.
fn upper<'b>(buf: &'b mut [u8; MAX_NAME], name: &[u8], sub: Option<&[u8]>) -> Option<&'b [u8]> {
    let len = name.len() + sub.map_or(0, |s| s.len() + 1);
    if len > MAX_NAME {
        return None;
    }
    buf[..name.len()].copy_from_slice(name);
    if let Some(sub) = sub {
        buf[name.len()] = b' ';
        buf[name.len() + 1..len].copy_from_slice(sub);
    }
    buf[..len].make_ascii_uppercase();
    Some(&buf[..len])
}

/// Slots of the lookup index: a power of two, well over twice the table's size, so probe
/// sequences stay short.
const SLOTS: usize = 1024;
const EMPTY: u16 = u16::MAX;

/// FNV-1a: names are a few bytes, and the index is built from a fixed table, so a simple
/// hash is enough; clients cannot add entries.
fn hash(bytes: &[u8]) -> usize {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h ^ (h >> 32)) as usize & (SLOTS - 1)
}

/// An open-addressing index over [`COMMANDS`], built once: a lookup is one hash and
/// usually one comparison (a binary search over the sorted table took nine).
fn index() -> &'static [u16; SLOTS] {
    static INDEX: std::sync::OnceLock<Box<[u16; SLOTS]>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut slots = Box::new([EMPTY; SLOTS]);
        for (i, spec) in COMMANDS.iter().enumerate() {
            let mut slot = hash(spec.name.as_bytes());
            while slots[slot] != EMPTY {
                slot = (slot + 1) & (SLOTS - 1);
            }
            slots[slot] = i as u16;
        }
        slots
    })
}

fn find(name: &[u8], sub: Option<&[u8]>) -> Option<&'static CommandSpec> {
    let mut buf = [0; MAX_NAME];
    let wanted = upper(&mut buf, name, sub)?;
    let slots = index();
    let mut slot = hash(wanted);
    loop {
        let spec = COMMANDS.get(usize::from(slots[slot]))?;
        if spec.name.as_bytes() == wanted {
            return Some(spec);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
}

/// A command's index in the table, or [`CommandId::OTHER`] for commands it does not
/// know: a dense key for per-command stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandId(u16);

impl CommandId {
    pub const OTHER: CommandId = CommandId(COMMANDS.len() as u16);

    /// The id of a spec returned by [`lookup`].
    pub fn of(spec: &'static CommandSpec) -> Self {
        let offset = spec as *const CommandSpec as usize - COMMANDS.as_ptr() as usize;
        CommandId((offset / std::mem::size_of::<CommandSpec>()) as u16)
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The id at `index` (`OTHER` past the table's end).
    pub fn from_index(index: usize) -> Self {
        CommandId(index.min(COMMANDS.len()) as u16)
    }
}

/// How many commands the table knows; ids run from 0 to `count()` (`OTHER`).
pub fn count() -> usize {
    COMMANDS.len()
}

/// The `op` label of a command's stats: its table name, or `other`.
pub fn stats_name(id: CommandId) -> &'static str {
    COMMANDS.get(id.index()).map_or("other", |spec| spec.name)
}

/// The spec of a command given its arguments (`args[0]` is the name). For container
/// commands the subcommand's spec, when the subcommand is known.
pub fn lookup<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Option<&'static CommandSpec> {
    let spec = find(args.next()?, None)?;
    if spec.has_subcommands {
        if let Some(sub) = args.next().and_then(|sub| find(spec.name.as_bytes(), Some(sub))) {
            return Some(sub);
        }
    }
    Some(spec)
}

/// The longest command name [`LastLookup`] keeps.
const LAST_NAME_MAX: usize = 24;

/// [`lookup`] with a memory of one: a pipeline (or a client) usually repeats one command,
/// spelt the same way each time, so the last lookup of a command without subcommands is
/// remembered by its bytes and answered without a search.
#[derive(Default)]
pub struct LastLookup {
    last: Option<([u8; LAST_NAME_MAX], usize, &'static CommandSpec)>,
}

impl LastLookup {
    /// The spec of a command given its arguments, as [`lookup`].
    pub fn lookup<'a>(&mut self, mut args: impl Iterator<Item = &'a [u8]> + Clone) -> Option<&'static CommandSpec> {
        let name = args.clone().next().unwrap_or_default();
        if let Some((bytes, len, spec)) = &self.last {
            if &bytes[..*len] == name {
                return Some(spec);
            }
        }
        let spec = lookup(&mut args);
        // Only a spec that is the name itself: a container's subcommand spec (`CONFIG GET`)
        // depends on the next argument too.
        let whole_name = |s: &&CommandSpec| !s.has_subcommands && s.name.as_bytes().eq_ignore_ascii_case(name);
        if let Some(spec) = spec.filter(|s| whole_name(s) && name.len() <= LAST_NAME_MAX) {
            let mut bytes = [0; LAST_NAME_MAX];
            bytes[..name.len()].copy_from_slice(name);
            self.last = Some((bytes, name.len(), spec));
        }
        spec
    }
}

/// The first key of a command, if it has one: from the table's position, or for the
/// movable-key commands sluice knows (EVAL and FCALL families: after `numkeys`; XREAD and
/// XREADGROUP: after `STREAMS`) by reading the arguments.
pub fn first_key<'a>(spec: &CommandSpec, mut args: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    if spec.first_key > 0 {
        return args.nth(usize::from(spec.first_key));
    }
    if !spec.has(MOVABLE_KEYS) {
        return None;
    }
    match spec.name {
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" => {
            let numkeys = args.nth(2)?;
            (numkeys != b"0").then(|| args.next()).flatten()
        }
        "XREAD" | "XREADGROUP" => {
            args.find(|a| a.eq_ignore_ascii_case(b"STREAMS"))?;
            args.next()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> impl Iterator<Item = &[u8]> + Clone {
        line.split(' ').map(str::as_bytes)
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(COMMANDS.len() > 300);
        assert!(COMMANDS.iter().all(|c| c.name.len() <= MAX_NAME));
    }

    #[test]
    fn lookups_are_case_insensitive_and_find_subcommands() {
        assert_eq!(lookup(args("get k")).unwrap().name, "GET");
        assert_eq!(lookup(args("config get maxmemory")).unwrap().name, "CONFIG GET");
        assert_eq!(lookup(args("CLIENT reply off")).unwrap().name, "CLIENT REPLY");
        // An unknown subcommand falls back to the container.
        assert_eq!(lookup(args("config frobnicate")).unwrap().name, "CONFIG");
        assert!(lookup(args("NOSUCHCOMMAND x")).is_none());
        assert!(lookup(args("GETX k")).is_none());
        assert!(lookup(args("BLPOP q 0")).unwrap().has(BLOCKING));
        assert!(lookup(args("SUBSCRIBE c")).unwrap().has(PUBSUB));
    }

    #[test]
    fn the_last_lookup_is_remembered_by_its_spelling() {
        let mut cache = LastLookup::default();
        assert_eq!(cache.lookup(args("get k")).unwrap().name, "GET");
        assert_eq!(cache.lookup(args("get j")).unwrap().name, "GET");
        assert_eq!(cache.lookup(args("GET j")).unwrap().name, "GET");
        assert_eq!(cache.lookup(args("config get x")).unwrap().name, "CONFIG GET", "containers are not cached");
        assert_eq!(cache.lookup(args("config set x y")).unwrap().name, "CONFIG SET");
        assert!(cache.lookup(args("getx k")).is_none());
    }

    #[test]
    fn ids_index_the_table() {
        let spec = lookup(args("config get x")).unwrap();
        let id = CommandId::of(spec);
        assert_eq!(stats_name(id), "CONFIG GET");
        assert_eq!(stats_name(CommandId::OTHER), "other");
        assert_eq!(CommandId::OTHER.index(), count());
        assert_eq!(CommandId::of(&COMMANDS[0]).index(), 0);
    }

    #[test]
    fn first_keys() {
        let key = |line: &'static str| {
            let spec = lookup(args(line)).unwrap();
            first_key(spec, args(line)).map(|k| String::from_utf8_lossy(k).into_owned())
        };
        assert_eq!(key("SET user:42 v").as_deref(), Some("user:42"));
        assert_eq!(key("OBJECT ENCODING user:42").as_deref(), Some("user:42"));
        assert_eq!(key("EVAL return 2 a b x").as_deref(), Some("a"));
        assert_eq!(key("EVAL return 0 x"), None);
        assert_eq!(key("XREAD COUNT 2 STREAMS s1 s2 0 0").as_deref(), Some("s1"));
        assert_eq!(key("PING"), None);
        assert_eq!(key("GET"), None, "missing arguments are not keys");
    }
}
