//! API keys, their names, and which header version a request or response uses.
//!
//! Spec: "Api Keys" (<https://kafka.apache.org/protocol#protocol_api_keys>) and the message
//! definitions' `flexibleVersions` (Apache Kafka `clients/src/main/resources/common/message/*.json`):
//! a request at or above its API's first flexible version uses request header v2 (KIP-482
//! tagged fields) and its response uses response header v1; below it, request header v1 and
//! response header v0. Two exceptions: ControlledShutdown v0 used request header v0 (no
//! client_id), and ApiVersions responses always use response header v0 (KIP-511: a client
//! must be able to read the broker's answer before it knows which versions the broker
//! speaks).
//!
//! API keys are open: [`ApiKey`] is any i16; the known ones have names and a flexible-version
//! entry, an unknown one is named `Unknown` and its frames pass through by header alone.

/// An API key. Any value is valid; [`ApiKey::name`] names the known ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKey(pub i16);

macro_rules! api_keys {
    ($( $value:literal $konst:ident $name:literal $flex:expr ;)*) => {
        impl ApiKey {
            $( pub const $konst: ApiKey = ApiKey($value); )*

            /// The protocol guide's name (`Produce`, `Metadata`), or `Unknown`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $( $value => $name, )*
                    _ => "Unknown",
                }
            }

            /// The first flexible (KIP-482) version of this API: `Some(None)` if it has
            /// none, `None` if the key is unknown.
            pub fn first_flexible_version(self) -> Option<Option<i16>> {
                match self.0 {
                    $( $value => Some($flex), )*
                    _ => None,
                }
            }

            /// Every API key this codec names, in order.
            pub const KNOWN: &'static [ApiKey] = &[$( ApiKey($value), )*];
        }
    };
}

api_keys! {
    0 PRODUCE "Produce" Some(9);
    1 FETCH "Fetch" Some(12);
    2 LIST_OFFSETS "ListOffsets" Some(6);
    3 METADATA "Metadata" Some(9);
    4 LEADER_AND_ISR "LeaderAndIsr" Some(4);
    5 STOP_REPLICA "StopReplica" Some(2);
    6 UPDATE_METADATA "UpdateMetadata" Some(6);
    7 CONTROLLED_SHUTDOWN "ControlledShutdown" Some(3);
    8 OFFSET_COMMIT "OffsetCommit" Some(8);
    9 OFFSET_FETCH "OffsetFetch" Some(6);
    10 FIND_COORDINATOR "FindCoordinator" Some(3);
    11 JOIN_GROUP "JoinGroup" Some(6);
    12 HEARTBEAT "Heartbeat" Some(4);
    13 LEAVE_GROUP "LeaveGroup" Some(4);
    14 SYNC_GROUP "SyncGroup" Some(4);
    15 DESCRIBE_GROUPS "DescribeGroups" Some(5);
    16 LIST_GROUPS "ListGroups" Some(3);
    17 SASL_HANDSHAKE "SaslHandshake" None;
    18 API_VERSIONS "ApiVersions" Some(3);
    19 CREATE_TOPICS "CreateTopics" Some(5);
    20 DELETE_TOPICS "DeleteTopics" Some(4);
    21 DELETE_RECORDS "DeleteRecords" Some(2);
    22 INIT_PRODUCER_ID "InitProducerId" Some(2);
    23 OFFSET_FOR_LEADER_EPOCH "OffsetForLeaderEpoch" Some(4);
    24 ADD_PARTITIONS_TO_TXN "AddPartitionsToTxn" Some(3);
    25 ADD_OFFSETS_TO_TXN "AddOffsetsToTxn" Some(3);
    26 END_TXN "EndTxn" Some(3);
    27 WRITE_TXN_MARKERS "WriteTxnMarkers" Some(1);
    28 TXN_OFFSET_COMMIT "TxnOffsetCommit" Some(3);
    29 DESCRIBE_ACLS "DescribeAcls" Some(2);
    30 CREATE_ACLS "CreateAcls" Some(2);
    31 DELETE_ACLS "DeleteAcls" Some(2);
    32 DESCRIBE_CONFIGS "DescribeConfigs" Some(4);
    33 ALTER_CONFIGS "AlterConfigs" Some(2);
    34 ALTER_REPLICA_LOG_DIRS "AlterReplicaLogDirs" Some(2);
    35 DESCRIBE_LOG_DIRS "DescribeLogDirs" Some(2);
    36 SASL_AUTHENTICATE "SaslAuthenticate" Some(2);
    37 CREATE_PARTITIONS "CreatePartitions" Some(2);
    38 CREATE_DELEGATION_TOKEN "CreateDelegationToken" Some(2);
    39 RENEW_DELEGATION_TOKEN "RenewDelegationToken" Some(2);
    40 EXPIRE_DELEGATION_TOKEN "ExpireDelegationToken" Some(2);
    41 DESCRIBE_DELEGATION_TOKEN "DescribeDelegationToken" Some(2);
    42 DELETE_GROUPS "DeleteGroups" Some(2);
    43 ELECT_LEADERS "ElectLeaders" Some(2);
    44 INCREMENTAL_ALTER_CONFIGS "IncrementalAlterConfigs" Some(1);
    45 ALTER_PARTITION_REASSIGNMENTS "AlterPartitionReassignments" Some(0);
    46 LIST_PARTITION_REASSIGNMENTS "ListPartitionReassignments" Some(0);
    47 OFFSET_DELETE "OffsetDelete" None;
    48 DESCRIBE_CLIENT_QUOTAS "DescribeClientQuotas" Some(1);
    49 ALTER_CLIENT_QUOTAS "AlterClientQuotas" Some(1);
    50 DESCRIBE_USER_SCRAM_CREDENTIALS "DescribeUserScramCredentials" Some(0);
    51 ALTER_USER_SCRAM_CREDENTIALS "AlterUserScramCredentials" Some(0);
    52 VOTE "Vote" Some(0);
    53 BEGIN_QUORUM_EPOCH "BeginQuorumEpoch" Some(1);
    54 END_QUORUM_EPOCH "EndQuorumEpoch" Some(1);
    55 DESCRIBE_QUORUM "DescribeQuorum" Some(0);
    56 ALTER_PARTITION "AlterPartition" Some(0);
    57 UPDATE_FEATURES "UpdateFeatures" Some(0);
    58 ENVELOPE "Envelope" Some(0);
    59 FETCH_SNAPSHOT "FetchSnapshot" Some(0);
    60 DESCRIBE_CLUSTER "DescribeCluster" Some(0);
    61 DESCRIBE_PRODUCERS "DescribeProducers" Some(0);
    62 BROKER_REGISTRATION "BrokerRegistration" Some(0);
    63 BROKER_HEARTBEAT "BrokerHeartbeat" Some(0);
    64 UNREGISTER_BROKER "UnregisterBroker" Some(0);
    65 DESCRIBE_TRANSACTIONS "DescribeTransactions" Some(0);
    66 LIST_TRANSACTIONS "ListTransactions" Some(0);
    67 ALLOCATE_PRODUCER_IDS "AllocateProducerIds" Some(0);
    68 CONSUMER_GROUP_HEARTBEAT "ConsumerGroupHeartbeat" Some(0);
    69 CONSUMER_GROUP_DESCRIBE "ConsumerGroupDescribe" Some(0);
    70 CONTROLLER_REGISTRATION "ControllerRegistration" Some(0);
    71 GET_TELEMETRY_SUBSCRIPTIONS "GetTelemetrySubscriptions" Some(0);
    72 PUSH_TELEMETRY "PushTelemetry" Some(0);
    73 ASSIGN_REPLICAS_TO_DIRS "AssignReplicasToDirs" Some(0);
    74 LIST_CLIENT_METRICS_RESOURCES "ListClientMetricsResources" Some(0);
    75 DESCRIBE_TOPIC_PARTITIONS "DescribeTopicPartitions" Some(0);
    76 SHARE_GROUP_HEARTBEAT "ShareGroupHeartbeat" Some(0);
    77 SHARE_GROUP_DESCRIBE "ShareGroupDescribe" Some(0);
    78 SHARE_FETCH "ShareFetch" Some(0);
    79 SHARE_ACKNOWLEDGE "ShareAcknowledge" Some(0);
    80 ADD_RAFT_VOTER "AddRaftVoter" Some(0);
    81 REMOVE_RAFT_VOTER "RemoveRaftVoter" Some(0);
    82 UPDATE_RAFT_VOTER "UpdateRaftVoter" Some(0);
    83 INITIALIZE_SHARE_GROUP_STATE "InitializeShareGroupState" Some(0);
    84 READ_SHARE_GROUP_STATE "ReadShareGroupState" Some(0);
    85 WRITE_SHARE_GROUP_STATE "WriteShareGroupState" Some(0);
    86 DELETE_SHARE_GROUP_STATE "DeleteShareGroupState" Some(0);
    87 READ_SHARE_GROUP_STATE_SUMMARY "ReadShareGroupStateSummary" Some(0);
}

impl ApiKey {
    pub fn is_known(self) -> bool {
        self.first_flexible_version().is_some()
    }

    /// Whether `version` of this API is flexible (KIP-482); `None` for an unknown key.
    pub fn is_flexible(self, version: i16) -> Option<bool> {
        self.first_flexible_version().map(|first| first.is_some_and(|f| version >= f))
    }

    /// The request header version `version` of this API uses: 0, 1 or 2. An unknown key
    /// gets 1, whose fields (api_key, api_version, correlation_id, client_id) start every
    /// header version but 0, so its header reads up to the client id.
    pub fn request_header_version(self, version: i16) -> u8 {
        if self == ApiKey::CONTROLLED_SHUTDOWN && version == 0 {
            return 0;
        }
        match self.is_flexible(version) {
            Some(true) => 2,
            _ => 1,
        }
    }

    /// The response header version: 1 (with tagged fields) for flexible versions, except
    /// ApiVersions (always 0, KIP-511); `None` for an unknown key (only the correlation id,
    /// common to both, is known).
    pub fn response_header_version(self, version: i16) -> Option<u8> {
        if self == ApiKey::API_VERSIONS {
            return Some(0);
        }
        self.is_flexible(version).map(u8::from)
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "Unknown({})", self.0)
        }
    }
}
