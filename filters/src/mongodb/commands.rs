//! The MongoDB command names sluice knows, and what the first element of each says.
//!
//! Spec: the database command reference (<https://www.mongodb.com/docs/manual/reference/command/>):
//! a command is a document whose first key is its name; for collection-level commands its
//! value is the collection's name (`{find: "users", $db: "app"}` runs on `app.users`), for a
//! few administrative ones the full namespace (`{shardCollection: "app.users"}`), and for
//! the rest a placeholder such as `1`. The legacy opcodes (removed from servers in 6.0)
//! are ops of their own: `OP_INSERT`, `OP_UPDATE`, `OP_DELETE`, `OP_GET_MORE`,
//! `OP_KILL_CURSORS`, and `OP_QUERY` for a query that is not a command.
//!
//! Known names are the stats label of their op (bounded whatever clients send); any other
//! command counts as `other` in the stats, while rules still see the name as sent.

use std::collections::HashMap;
use std::sync::OnceLock;

/// What the value of a command's first element names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A collection of the command's `$db` (when the value is a string).
    Collection,
    /// A full `db.collection` namespace (when the value is a string).
    Namespace,
    /// Nothing the filter attributes (a user, a role, a message, a placeholder).
    None,
}

use Subject::{Collection as C, Namespace as N, None as X};

/// Every command name with what its first value names. Both spellings of `isMaster` are
/// real (drivers send `ismaster` in the legacy handshake).
const COMMANDS: &[(&str, Subject)] = &[
    // CRUD and cursors.
    ("find", C),
    ("insert", C),
    ("update", C),
    ("delete", C),
    ("findAndModify", C),
    ("getMore", X),
    ("killCursors", C),
    ("aggregate", C),
    ("count", C),
    ("distinct", C),
    ("mapReduce", C),
    ("bulkWrite", X),
    ("explain", X),
    ("getLastError", X),
    ("getPrevError", X),
    ("resetError", X),
    // Collections, indexes, databases.
    ("create", C),
    ("drop", C),
    ("dropDatabase", X),
    ("createIndexes", C),
    ("dropIndexes", C),
    ("listIndexes", C),
    ("listCollections", X),
    ("listDatabases", X),
    ("collMod", C),
    ("compact", C),
    ("convertToCapped", C),
    ("cloneCollectionAsCapped", C),
    ("renameCollection", N),
    ("reIndex", C),
    ("validate", C),
    ("collStats", C),
    ("dataSize", N),
    ("dbStats", X),
    ("dbHash", X),
    ("filemd5", X),
    ("setIndexCommitQuorum", C),
    ("createSearchIndexes", C),
    ("dropSearchIndex", C),
    ("listSearchIndexes", C),
    ("updateSearchIndex", C),
    ("planCacheClear", C),
    ("planCacheClearFilters", C),
    ("planCacheListFilters", C),
    ("planCacheSetFilter", C),
    // Sessions and transactions.
    ("startSession", X),
    ("endSessions", X),
    ("refreshSessions", X),
    ("killSessions", X),
    ("killAllSessions", X),
    ("killAllSessionsByPattern", X),
    ("commitTransaction", X),
    ("abortTransaction", X),
    // Handshake, authentication, users and roles.
    ("hello", X),
    ("isMaster", X),
    ("ismaster", X),
    ("saslStart", X),
    ("saslContinue", X),
    ("authenticate", X),
    ("logout", X),
    ("getnonce", X),
    ("createUser", X),
    ("updateUser", X),
    ("dropUser", X),
    ("dropAllUsersFromDatabase", X),
    ("grantRolesToUser", X),
    ("revokeRolesFromUser", X),
    ("usersInfo", X),
    ("createRole", X),
    ("updateRole", X),
    ("dropRole", X),
    ("dropAllRolesFromDatabase", X),
    ("grantPrivilegesToRole", X),
    ("revokePrivilegesFromRole", X),
    ("grantRolesToRole", X),
    ("revokeRolesFromRole", X),
    ("rolesInfo", X),
    ("invalidateUserCache", X),
    ("connectionStatus", X),
    // Diagnostics.
    ("ping", X),
    ("buildInfo", X),
    ("buildinfo", X),
    ("serverStatus", X),
    ("hostInfo", X),
    ("listCommands", X),
    ("getCmdLineOpts", X),
    ("getLog", X),
    ("getParameter", X),
    ("setParameter", X),
    ("getClusterParameter", X),
    ("setClusterParameter", X),
    ("getDefaultRWConcern", X),
    ("setDefaultRWConcern", X),
    ("currentOp", X),
    ("killOp", X),
    ("top", X),
    ("profile", X),
    ("lockInfo", X),
    ("connPoolStats", X),
    ("shardConnPoolStats", X),
    ("whatsmyuri", X),
    ("features", X),
    ("getDiagnosticData", X),
    ("logApplicationMessage", X),
    ("logRotate", X),
    ("rotateCertificates", X),
    ("driverOIDTest", X),
    ("validateDBMetadata", X),
    ("fsync", X),
    ("fsyncUnlock", X),
    ("shutdown", X),
    ("setFeatureCompatibilityVersion", X),
    ("setUserWriteBlockMode", X),
    ("dropConnections", X),
    ("autoCompact", X),
    ("getFreeMonitoringStatus", X),
    ("setFreeMonitoring", X),
    ("compactStructuredEncryptionData", C),
    ("cleanupStructuredEncryptionData", C),
    // Replication.
    ("replSetGetStatus", X),
    ("replSetGetConfig", X),
    ("replSetInitiate", X),
    ("replSetReconfig", X),
    ("replSetStepDown", X),
    ("replSetFreeze", X),
    ("replSetMaintenance", X),
    ("replSetSyncFrom", X),
    ("replSetResizeOplog", X),
    ("replSetAbortPrimaryCatchUp", X),
    ("appendOplogNote", X),
    ("applyOps", X),
    // Sharding.
    ("addShard", X),
    ("removeShard", X),
    ("listShards", X),
    ("enableSharding", X),
    ("shardCollection", N),
    ("reshardCollection", N),
    ("refineCollectionShardKey", N),
    ("unshardCollection", N),
    ("moveCollection", N),
    ("movePrimary", X),
    ("moveChunk", N),
    ("moveRange", N),
    ("mergeChunks", N),
    ("split", N),
    ("splitVector", N),
    ("clearJumboFlag", N),
    ("cleanupOrphaned", N),
    ("checkShardingIndex", N),
    ("balancerStart", X),
    ("balancerStop", X),
    ("balancerStatus", X),
    ("balancerCollectionStatus", N),
    ("configureCollectionBalancing", N),
    ("analyzeShardKey", N),
    ("configureQueryAnalyzer", N),
    ("addShardToZone", X),
    ("removeShardFromZone", X),
    ("updateZoneKeyRange", N),
    ("flushRouterConfig", X),
    ("getShardMap", X),
    ("getShardVersion", N),
    ("isdbgrid", X),
    ("shardingState", X),
    ("abortReshardCollection", N),
    ("commitReshardCollection", N),
    ("cleanupReshardCollection", N),
    ("checkMetadataConsistency", X),
];

/// The ops of the legacy opcodes, after the commands.
pub const OP_INSERT: &str = "OP_INSERT";
pub const OP_UPDATE: &str = "OP_UPDATE";
pub const OP_DELETE: &str = "OP_DELETE";
pub const OP_GET_MORE: &str = "OP_GET_MORE";
pub const OP_KILL_CURSORS: &str = "OP_KILL_CURSORS";
/// An OP_QUERY on a collection (a legacy find), not a command.
pub const OP_QUERY: &str = "OP_QUERY";
const LEGACY: [&str; 6] = [OP_INSERT, OP_UPDATE, OP_DELETE, OP_GET_MORE, OP_KILL_CURSORS, OP_QUERY];

/// The stats label of commands sluice does not know.
pub const OTHER: &str = "other";

/// A known op (command or legacy opcode), or [`CommandId::OTHER`]: an index for the stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommandId(u16);

impl CommandId {
    pub const OTHER: CommandId = CommandId((COMMANDS.len() + LEGACY.len()) as u16);

    /// How many ids there are, [`CommandId::OTHER`] included.
    pub const COUNT: usize = COMMANDS.len() + LEGACY.len() + 1;

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The op's name: the command as the table spells it, a legacy opcode, or `other`.
    pub fn name(self) -> &'static str {
        let i = self.index();
        match COMMANDS.get(i) {
            Some((name, _)) => name,
            None => LEGACY.get(i - COMMANDS.len()).copied().unwrap_or(OTHER),
        }
    }

    /// What the command's first value names.
    pub fn subject(self) -> Subject {
        COMMANDS.get(self.index()).map_or(Subject::None, |(_, s)| *s)
    }

    /// A legacy opcode's op.
    pub fn legacy(name: &str) -> CommandId {
        let at = LEGACY.iter().position(|l| *l == name).unwrap_or(LEGACY.len());
        CommandId((COMMANDS.len() + at) as u16)
    }

    /// The id of a command name as sent (exact spelling), or [`CommandId::OTHER`].
    pub fn of(name: &str) -> CommandId {
        // One seeded hash of a short name; built once.
        static TABLE: OnceLock<HashMap<&'static str, u16, foldhash::fast::RandomState>> = OnceLock::new();
        let table = TABLE.get_or_init(|| COMMANDS.iter().enumerate().map(|(i, (name, _))| (*name, i as u16)).collect());
        table.get(name).map_or(CommandId::OTHER, |&i| CommandId(i))
    }

    pub fn is(self, name: &str) -> bool {
        self.name() == name
    }
}

/// Every op name a `mongodb` listener reports (the stats' `op` label values but `other`),
/// for checking the names rules match.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|(name, _)| *name).chain(LEGACY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for name in op_names() {
            assert!(seen.insert(name), "{name} twice");
        }
        for (name, _) in COMMANDS {
            assert_eq!(CommandId::of(name).name(), *name);
        }
        assert_eq!(CommandId::of("noSuchCommand"), CommandId::OTHER);
        assert_eq!(CommandId::OTHER.name(), "other");
        assert_eq!(CommandId::legacy(OP_GET_MORE).name(), "OP_GET_MORE");
        assert_eq!(CommandId::of("find").subject(), Subject::Collection);
        assert_eq!(CommandId::of("renameCollection").subject(), Subject::Namespace);
        assert_eq!(CommandId::of("hello").subject(), Subject::None);
        assert!(CommandId::COUNT < usize::from(u16::MAX));
    }
}
