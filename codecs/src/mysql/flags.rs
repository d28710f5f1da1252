//! Capability flags and server status flags.
//!
//! Spec: "Capabilities Flags" and "SERVER_STATUS_flags_enum"
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html>,
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/mysql__com_8h.html>), and MariaDB's
//! extended capabilities (<https://mariadb.com/kb/en/connection/#capabilities>,
//! "MariaDB protocol differences with MySQL").
//!
//! [`Capabilities`] is 64 bits wide: the low 32 are the standard flags, the high 32 are
//! MariaDB's extended capabilities, which travel in otherwise reserved bytes of the greeting
//! and the handshake response only when the peer clears `CLIENT_MYSQL` (bit 0).

use std::fmt;

/// Client or server capability flags (standard in the low half, MariaDB's in the high half).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

macro_rules! flag_names {
    ($ty:ident : $($name:ident = $value:expr),* $(,)?) => {
        impl $ty {
            $(pub const $name: $ty = $ty($value);)*
            const NAMES: &'static [(&'static str, $ty)] = &[$((stringify!($name), $ty::$name)),*];
        }
    };
}

flag_names!(Capabilities:
    // Set by MySQL peers, cleared by MariaDB ones (the old CLIENT_LONG_PASSWORD bit).
    CLIENT_MYSQL = 1,
    CLIENT_FOUND_ROWS = 1 << 1,
    CLIENT_LONG_FLAG = 1 << 2,
    CLIENT_CONNECT_WITH_DB = 1 << 3,
    CLIENT_NO_SCHEMA = 1 << 4,
    CLIENT_COMPRESS = 1 << 5,
    CLIENT_ODBC = 1 << 6,
    CLIENT_LOCAL_FILES = 1 << 7,
    CLIENT_IGNORE_SPACE = 1 << 8,
    CLIENT_PROTOCOL_41 = 1 << 9,
    CLIENT_INTERACTIVE = 1 << 10,
    CLIENT_SSL = 1 << 11,
    CLIENT_IGNORE_SIGPIPE = 1 << 12,
    CLIENT_TRANSACTIONS = 1 << 13,
    CLIENT_RESERVED = 1 << 14,
    CLIENT_SECURE_CONNECTION = 1 << 15,
    CLIENT_MULTI_STATEMENTS = 1 << 16,
    CLIENT_MULTI_RESULTS = 1 << 17,
    CLIENT_PS_MULTI_RESULTS = 1 << 18,
    CLIENT_PLUGIN_AUTH = 1 << 19,
    CLIENT_CONNECT_ATTRS = 1 << 20,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21,
    CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22,
    CLIENT_SESSION_TRACK = 1 << 23,
    CLIENT_DEPRECATE_EOF = 1 << 24,
    CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25,
    CLIENT_ZSTD_COMPRESSION_ALGORITHM = 1 << 26,
    CLIENT_QUERY_ATTRIBUTES = 1 << 27,
    MULTI_FACTOR_AUTHENTICATION = 1 << 28,
    CLIENT_CAPABILITY_EXTENSION = 1 << 29,
    CLIENT_SSL_VERIFY_SERVER_CERT = 1 << 30,
    CLIENT_REMEMBER_OPTIONS = 1 << 31,
    MARIADB_CLIENT_PROGRESS = 1 << 32,
    MARIADB_CLIENT_COM_MULTI = 1 << 33,
    MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 34,
    MARIADB_CLIENT_EXTENDED_METADATA = 1 << 35,
    MARIADB_CLIENT_CACHE_METADATA = 1 << 36,
    MARIADB_CLIENT_BULK_UNIT_RESULTS = 1 << 37,
);

impl Capabilities {
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersection(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The low 32 bits: what a MySQL peer understands.
    pub const fn standard(self) -> u32 {
        self.0 as u32
    }

    /// MariaDB's extended capabilities, shifted down to 32 bits.
    pub const fn mariadb_extended(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Server status flags, carried by OK and EOF packets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusFlags(pub u16);

flag_names!(StatusFlags:
    SERVER_STATUS_IN_TRANS = 1,
    SERVER_STATUS_AUTOCOMMIT = 1 << 1,
    SERVER_MORE_RESULTS_EXISTS = 1 << 3,
    SERVER_QUERY_NO_GOOD_INDEX_USED = 1 << 4,
    SERVER_QUERY_NO_INDEX_USED = 1 << 5,
    SERVER_STATUS_CURSOR_EXISTS = 1 << 6,
    SERVER_STATUS_LAST_ROW_SENT = 1 << 7,
    SERVER_STATUS_DB_DROPPED = 1 << 8,
    SERVER_STATUS_NO_BACKSLASH_ESCAPES = 1 << 9,
    SERVER_STATUS_METADATA_CHANGED = 1 << 10,
    SERVER_QUERY_WAS_SLOW = 1 << 11,
    SERVER_PS_OUT_PARAMS = 1 << 12,
    SERVER_STATUS_IN_TRANS_READONLY = 1 << 13,
    SERVER_SESSION_STATE_CHANGED = 1 << 14,
);

impl StatusFlags {
    pub const fn bits(self) -> u16 {
        self.0
    }

    pub const fn contains(self, other: StatusFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Another result follows this one in the same response (multi-statements, CALL).
    pub const fn more_results(self) -> bool {
        self.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
    }

    pub const fn in_transaction(self) -> bool {
        self.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    }

    pub const fn cursor_exists(self) -> bool {
        self.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
    }
}

/// Prints the set flags by name, then any bits without one.
fn debug_flags<T: Copy>(f: &mut fmt::Formatter<'_>, bits: u64, names: &[(&str, T)], of: fn(T) -> u64) -> fmt::Result {
    let mut rest = bits;
    let mut first = true;
    for &(name, flag) in names {
        let b = of(flag);
        if bits & b == b {
            f.write_str(if first { "" } else { " | " })?;
            f.write_str(name)?;
            rest &= !b;
            first = false;
        }
    }
    if rest != 0 || first {
        write!(f, "{}{rest:#x}", if first { "" } else { " | " })?;
    }
    Ok(())
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_flags(f, self.0, Capabilities::NAMES, |c| c.0)
    }
}

impl fmt::Debug for StatusFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_flags(f, u64::from(self.0), StatusFlags::NAMES, |s| u64::from(s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_flags() {
        let caps = Capabilities::CLIENT_SSL.union(Capabilities::MARIADB_CLIENT_PROGRESS).union(Capabilities(1 << 40));
        assert_eq!(format!("{caps:?}"), "CLIENT_SSL | MARIADB_CLIENT_PROGRESS | 0x10000000000");
        assert_eq!(format!("{:?}", StatusFlags(0)), "0x0");
        assert_eq!(format!("{:?}", StatusFlags(0x22)), "SERVER_STATUS_AUTOCOMMIT | SERVER_QUERY_NO_INDEX_USED");
        assert!(StatusFlags(0x0A).more_results());
        assert_eq!(caps.mariadb_extended(), 1 | 1 << 8);
    }
}
