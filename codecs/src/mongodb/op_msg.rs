//! OP_MSG (opcode 2013): flag bits, sections and the optional CRC-32C checksum.
//!
//! Spec: the OP_MSG specification
//! (<https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md>) and the
//! wire protocol page (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#op_msg>):
//!
//! ```text
//! header, uint32 flagBits, Section+, [uint32 checksum]
//! Section: uint8 kind; kind 0: document (the body); kind 1: int32 size (counting itself),
//!          cstring identifier, document* (a document sequence)
//! ```
//!
//! Bits 0-15 of flagBits are "required": a recipient must error on one it does not know
//! (only checksumPresent, bit 0, and moreToCome, bit 1, are defined); bits 16-31 are
//! optional and ignored unless known (exhaustAllowed, bit 16). When checksumPresent is set
//! the last 4 bytes are the CRC-32C (Castagnoli) of everything before them, and it is
//! verified here. There must be exactly one kind 0 section, in any position; document
//! sequence identifiers must be unique; any other kind is an error.
//!
//! Parsing checks the framing of every section and of every document in every sequence (a
//! jump from length to length), not the documents' elements: those are read lazily through
//! [`Document`]. Nothing is copied.

use super::document::Document;
use super::error::MongoError;
use super::header::{le_i32, le_u32, Message, OpCode, HEADER_LEN};

/// The CRC-32C (Castagnoli) the checksum uses.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The most document sequences one OP_MSG may carry here. Commands send at most two
/// (`bulkWrite`: `ops` and `nsInfo`); the cap keeps the uniqueness check cheap.
pub const MAX_SEQUENCES: usize = 16;

/// OP_MSG flagBits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MsgFlags(pub u32);

impl MsgFlags {
    pub const CHECKSUM_PRESENT: u32 = 1 << 0;
    pub const MORE_TO_COME: u32 = 1 << 1;
    pub const EXHAUST_ALLOWED: u32 = 1 << 16;
    /// The required bits (0-15) the spec defines.
    pub const KNOWN_REQUIRED: u32 = Self::CHECKSUM_PRESENT | Self::MORE_TO_COME;

    pub fn checksum_present(self) -> bool {
        self.0 & Self::CHECKSUM_PRESENT != 0
    }

    /// On a request: no reply will come. On a reply: more replies to the same request follow.
    pub fn more_to_come(self) -> bool {
        self.0 & Self::MORE_TO_COME != 0
    }

    /// On a request: the client accepts several replies (an exhaust cursor or streaming hello).
    pub fn exhaust_allowed(self) -> bool {
        self.0 & Self::EXHAUST_ALLOWED != 0
    }

    /// Undefined required bits, which make the message an error.
    pub fn unknown_required(self) -> u32 {
        self.0 & 0xFFFF & !Self::KNOWN_REQUIRED
    }
}

/// A parsed OP_MSG, borrowing its message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpMsg<'a> {
    flags: MsgFlags,
    body: Document<'a>,
    /// The sections, checksum excluded.
    sections: &'a [u8],
    checksum: Option<u32>,
}

impl<'a> OpMsg<'a> {
    /// Parses a whole OP_MSG message.
    pub fn parse(msg: &'a Message) -> Result<OpMsg<'a>, MongoError> {
        if msg.op_code() != OpCode::Msg {
            return Err(MongoError::WrongOpCode { expected: OpCode::Msg, actual: msg.op_code() });
        }
        OpMsg::parse_bytes(msg.bytes())
    }

    /// Parses the bytes of one whole OP_MSG, header included (the header's opcode and
    /// length are not checked here; [`Message`] does that).
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<OpMsg<'a>, MongoError> {
        let flags = MsgFlags(le_u32(bytes, HEADER_LEN).ok_or(MongoError::Truncated { what: "OP_MSG flagBits" })?);
        let unknown = flags.unknown_required();
        if unknown != 0 {
            return Err(MongoError::UnknownRequiredFlags { bits: unknown });
        }
        let mut sections = &bytes[HEADER_LEN + 4..];
        let mut checksum = None;
        if flags.checksum_present() {
            let split = bytes.len().checked_sub(4).filter(|&n| n >= HEADER_LEN + 4);
            let split = split.ok_or(MongoError::Truncated { what: "OP_MSG checksum" })?;
            let (covered, tail) = bytes.split_at(split);
            let stored = le_u32(tail, 0).ok_or(MongoError::Truncated { what: "OP_MSG checksum" })?;
            let computed = CRC32C.checksum(covered);
            if stored != computed {
                return Err(MongoError::ChecksumMismatch { stored, computed });
            }
            checksum = Some(stored);
            sections = &covered[HEADER_LEN + 4..];
        }
        let body = check_sections(sections)?;
        Ok(OpMsg { flags, body, sections, checksum })
    }

    pub fn flags(&self) -> MsgFlags {
        self.flags
    }

    /// The kind 0 section: the command, or the reply.
    pub fn body(&self) -> Document<'a> {
        self.body
    }

    /// The verified checksum, if the message carried one.
    pub fn checksum(&self) -> Option<u32> {
        self.checksum
    }

    /// The kind 1 sections in wire order.
    pub fn sequences(&self) -> Sequences<'a> {
        Sequences { rest: self.sections }
    }

    /// The document sequence named `identifier` (`documents`, `updates`, `deletes`, `ops`).
    pub fn sequence(&self, identifier: &str) -> Option<DocumentSequence<'a>> {
        self.sequences().find(|s| s.identifier == identifier)
    }

    /// Documents in every sequence (for an insert: how many are inserted).
    pub fn sequence_documents(&self) -> usize {
        self.sequences().map(|s| s.len()).sum()
    }
}

/// One kind 1 section: an identifier and documents, already framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentSequence<'a> {
    pub identifier: &'a str,
    documents: &'a [u8],
}

impl<'a> DocumentSequence<'a> {
    /// The documents, in order (their framing was checked when the message was parsed).
    pub fn documents(&self) -> SequenceDocuments<'a> {
        SequenceDocuments { rest: self.documents }
    }

    pub fn len(&self) -> usize {
        self.documents().count()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The raw concatenated documents.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.documents
    }
}

/// Iterator over the documents of a [`DocumentSequence`].
#[derive(Clone, Debug)]
pub struct SequenceDocuments<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SequenceDocuments<'a> {
    type Item = Document<'a>;

    fn next(&mut self) -> Option<Document<'a>> {
        // Checked at parse time; a failure here can only mean the end.
        let (doc, rest) = Document::parse_prefix(self.rest).ok()?;
        self.rest = rest;
        Some(doc)
    }
}

/// Iterator over an OP_MSG's kind 1 sections (checked at parse time).
#[derive(Clone, Debug)]
pub struct Sequences<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Sequences<'a> {
    type Item = DocumentSequence<'a>;

    fn next(&mut self) -> Option<DocumentSequence<'a>> {
        loop {
            let (section, rest) = next_section(self.rest).ok()??;
            self.rest = rest;
            if let Section::Sequence(s) = section {
                return Some(s);
            }
        }
    }
}

enum Section<'a> {
    Body(Document<'a>),
    Sequence(DocumentSequence<'a>),
}

/// The next section at the front of `buf`, or `None` at the end.
fn next_section(buf: &[u8]) -> Result<Option<(Section<'_>, &[u8])>, MongoError> {
    let Some((&kind, rest)) = buf.split_first() else { return Ok(None) };
    match kind {
        0 => {
            let (doc, rest) = Document::parse_prefix(rest).map_err(MongoError::bson("OP_MSG body"))?;
            Ok(Some((Section::Body(doc), rest)))
        }
        1 => {
            let size = le_i32(rest, 0).ok_or(MongoError::Truncated { what: "document sequence size" })?;
            let size = usize::try_from(size).ok().filter(|&s| s >= 4);
            let size = size.ok_or(MongoError::Malformed { what: "document sequence size" })?;
            let payload = rest.get(4..size).ok_or(MongoError::Truncated { what: "document sequence" })?;
            let end =
                memchr::memchr(0, payload).ok_or(MongoError::Truncated { what: "document sequence identifier" })?;
            let identifier = std::str::from_utf8(&payload[..end])
                .map_err(|_| MongoError::Malformed { what: "document sequence identifier" })?;
            let documents = &payload[end + 1..];
            Ok(Some((Section::Sequence(DocumentSequence { identifier, documents }), &rest[size..])))
        }
        other => Err(MongoError::UnknownSectionKind(other)),
    }
}

/// Checks every section's framing; returns the one body.
fn check_sections(mut buf: &[u8]) -> Result<Document<'_>, MongoError> {
    let mut body = None;
    let mut bodies = 0usize;
    let mut ids: [&str; MAX_SEQUENCES] = [""; MAX_SEQUENCES];
    let mut n_ids = 0;
    while let Some((section, rest)) = next_section(buf)? {
        buf = rest;
        match section {
            Section::Body(doc) => {
                bodies += 1;
                body.get_or_insert(doc);
            }
            Section::Sequence(seq) => {
                let mut docs = seq.documents;
                while !docs.is_empty() {
                    let (_, rest) = Document::parse_prefix(docs).map_err(MongoError::bson("sequence document"))?;
                    docs = rest;
                }
                if n_ids == MAX_SEQUENCES {
                    return Err(MongoError::TooManySequences { limit: MAX_SEQUENCES });
                }
                if ids[..n_ids].contains(&seq.identifier) {
                    return Err(MongoError::DuplicateSequence);
                }
                ids[n_ids] = seq.identifier;
                n_ids += 1;
            }
        }
    }
    match (body, bodies) {
        (Some(doc), 1) => Ok(doc),
        (_, count) => Err(MongoError::BodySections { count }),
    }
}
