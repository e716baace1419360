//! Protobuf encoding and decoding of both dialects, written by hand
//! (no code generation). The rules are documented in the parent module.

use super::Message;
use super::{DecodeError, DecodeErrorKind, EncodeError, Site};
use super::{Decoded, DecodedRef, Dialect, HistoryEntry, HistoryEntryRef, Limits, MessageRef};
use bytes::Bytes;

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const SGROUP: u8 = 3;
const EGROUP: u8 = 4;
const I32: u8 = 5;

/// Largest field number protobuf allows.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

const WITHIN_MESSAGE: &str = "message";

/// A top-level field of a message, independent of the dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    SenderId,
    MessageId,
    ChannelId,
    Lamport,
    History,
    Bloom,
    Repair,
    Content,
}

impl Field {
    fn number(self, dialect: Dialect) -> u32 {
        match (dialect, self) {
            (Dialect::Spec, Field::SenderId) => 1,
            (Dialect::Spec, Field::MessageId) => 2,
            (Dialect::Spec, Field::ChannelId) => 3,
            (Dialect::Spec, Field::Lamport) => 10,
            (Dialect::Spec, Field::History) => 11,
            (Dialect::Spec, Field::Bloom) => 12,
            (Dialect::Spec, Field::Repair) => 13,
            (Dialect::Spec, Field::Content) => 20,
            (Dialect::Nim, Field::MessageId) => 1,
            (Dialect::Nim, Field::Lamport) => 2,
            (Dialect::Nim, Field::History) => 3,
            (Dialect::Nim, Field::ChannelId) => 4,
            (Dialect::Nim, Field::Content) => 5,
            (Dialect::Nim, Field::Bloom) => 6,
            (Dialect::Nim, Field::SenderId) => 7,
            (Dialect::Nim, Field::Repair) => 13,
        }
    }

    fn from_number(dialect: Dialect, number: u32) -> Option<Field> {
        Some(match (dialect, number) {
            (Dialect::Spec, 1) => Field::SenderId,
            (Dialect::Spec, 2) => Field::MessageId,
            (Dialect::Spec, 3) => Field::ChannelId,
            (Dialect::Spec, 10) => Field::Lamport,
            (Dialect::Spec, 11) => Field::History,
            (Dialect::Spec, 12) => Field::Bloom,
            (Dialect::Spec, 13) => Field::Repair,
            (Dialect::Spec, 20) => Field::Content,
            (Dialect::Nim, 1) => Field::MessageId,
            (Dialect::Nim, 2) => Field::Lamport,
            (Dialect::Nim, 3) => Field::History,
            (Dialect::Nim, 4) => Field::ChannelId,
            (Dialect::Nim, 5) => Field::Content,
            (Dialect::Nim, 6) => Field::Bloom,
            (Dialect::Nim, 7) => Field::SenderId,
            (Dialect::Nim, 13) => Field::Repair,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Field::SenderId => "sender_id",
            Field::MessageId => "message_id",
            Field::ChannelId => "channel_id",
            Field::Lamport => "lamport_timestamp",
            Field::History => "causal_history",
            Field::Bloom => "bloom_filter",
            Field::Repair => "repair_request",
            Field::Content => "content",
        }
    }

    fn site(self, dialect: Dialect) -> Site {
        Site::Field {
            number: self.number(dialect),
            name: self.name(),
        }
    }
}

/// Which list a history entry belongs to (for error messages and limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    History,
    Repair,
}

impl List {
    fn within(self) -> &'static str {
        match self {
            List::History => "causal_history entry",
            List::Repair => "repair_request entry",
        }
    }

    fn site(self, number: u32) -> Site {
        let name = match (self, number) {
            (List::History, 1) => "causal_history.message_id",
            (List::History, 2) => "causal_history.retrieval_hint",
            (List::History, 3) => "causal_history.sender_id",
            (List::Repair, 1) => "repair_request.message_id",
            (List::Repair, 2) => "repair_request.retrieval_hint",
            (List::Repair, 3) => "repair_request.sender_id",
            _ => "unknown",
        };
        Site::Field { number, name }
    }
}

fn error(offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

/// A cursor over `buf[pos..end]`. Invariant: `pos <= end <= buf.len()`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize, end: usize) -> Self {
        let end = end.min(buf.len());
        Reader {
            buf,
            pos: pos.min(end),
            end,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    #[inline]
    fn varint(&mut self, site: Site) -> Result<u64, DecodeError> {
        // Fast path: tags and short lengths are one byte.
        if self.pos < self.end {
            if let Some(&b) = self.buf.get(self.pos) {
                if b < 0x80 {
                    self.pos += 1;
                    return Ok(u64::from(b));
                }
            }
        }
        self.varint_slow(site)
    }

    fn varint_slow(&mut self, site: Site) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let at = start.saturating_add(i);
            let byte = match self.buf.get(at) {
                Some(&b) if at < self.end => b,
                _ => return Err(error(start, DecodeErrorKind::TruncatedVarint { site })),
            };
            if i == 9 {
                if byte & 0x80 != 0 {
                    return Err(error(start, DecodeErrorKind::VarintTooLong { site }));
                }
                if byte > 1 {
                    return Err(error(start, DecodeErrorKind::VarintOverflow { site }));
                }
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.pos = at + 1;
                return Ok(value);
            }
        }
        // Unreachable: the tenth byte either ends the varint or is rejected above.
        Err(error(start, DecodeErrorKind::VarintTooLong { site }))
    }

    /// Reads a tag: (field number, wire type).
    fn tag(&mut self, within: &'static str) -> Result<(u32, u8), DecodeError> {
        let at = self.pos;
        let raw = self.varint(Site::Tag { within })?;
        let number = raw >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(error(
                at,
                DecodeErrorKind::InvalidFieldNumber { number, within },
            ));
        }
        // Lossless: number <= 2^29 - 1 and the wire type is 3 bits.
        Ok((number as u32, (raw & 7) as u8))
    }

    /// Reads a length prefix and returns the value's range in `buf`.
    fn len_delimited(&mut self, site: Site) -> Result<(usize, usize), DecodeError> {
        let at = self.pos;
        let len = self.varint(site)?;
        let available = self.remaining();
        match usize::try_from(len) {
            Ok(n) if n <= available => {
                let start = self.pos;
                self.pos = start + n;
                Ok((start, start + n))
            }
            _ => Err(error(
                at,
                DecodeErrorKind::LengthOverrun {
                    site,
                    len,
                    available,
                },
            )),
        }
    }

    fn fixed(&mut self, site: Site, width: usize) -> Result<(), DecodeError> {
        let available = self.remaining();
        if available < width {
            return Err(error(
                self.pos,
                DecodeErrorKind::TruncatedFixed {
                    site,
                    width,
                    available,
                },
            ));
        }
        self.pos += width;
        Ok(())
    }

    /// Skips the value of an unknown field.
    fn skip(&mut self, site: Site, wire_type: u8, tag_at: usize) -> Result<(), DecodeError> {
        match wire_type {
            VARINT => self.varint(site).map(|_| ()),
            I64 => self.fixed(site, 8),
            LEN => self.len_delimited(site).map(|_| ()),
            I32 => self.fixed(site, 4),
            _ => Err(bad_wire_type(site, wire_type, tag_at)),
        }
    }

    fn bytes(&self, start: usize, end: usize) -> &'a [u8] {
        self.buf.get(start..end).unwrap_or_default()
    }
}

/// The error for wire types 3, 4, 6 and 7.
fn bad_wire_type(site: Site, wire_type: u8, tag_at: usize) -> DecodeError {
    if wire_type == SGROUP || wire_type == EGROUP {
        error(tag_at, DecodeErrorKind::Group { site, wire_type })
    } else {
        error(tag_at, DecodeErrorKind::InvalidWireType { site, wire_type })
    }
}

fn expect_wire_type(site: Site, expected: u8, found: u8, tag_at: usize) -> Result<(), DecodeError> {
    match found {
        _ if found == expected => Ok(()),
        SGROUP | EGROUP | 6 | 7 => Err(bad_wire_type(site, found, tag_at)),
        _ => Err(error(
            tag_at,
            DecodeErrorKind::WrongWireType {
                site,
                expected,
                found,
            },
        )),
    }
}

/// Validates an id field: length limit (reported at the tag) and UTF-8
/// (reported at the first bad byte).
fn id_string(
    bytes: &[u8],
    value_at: usize,
    site: Site,
    max: usize,
    tag_at: usize,
) -> Result<&str, DecodeError> {
    if bytes.len() > max {
        return Err(error(
            tag_at,
            DecodeErrorKind::IdTooLong {
                site,
                len: bytes.len(),
                max,
            },
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => Err(error(
            value_at.saturating_add(e.valid_up_to()),
            DecodeErrorKind::InvalidUtf8 { site },
        )),
    }
}

fn check_size(input: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if input.len() > limits.max_message_bytes {
        return Err(error(
            0,
            DecodeErrorKind::MessageTooLarge {
                len: input.len(),
                max: limits.max_message_bytes,
            },
        ));
    }
    Ok(())
}

/// Guesses the dialect of a message (see the module documentation).
fn detect(buf: &[u8]) -> Dialect {
    let mut r = Reader::new(buf, 0, buf.len());
    while !r.at_end() {
        let tag_at = r.pos;
        let Ok((number, wire_type)) = r.tag(WITHIN_MESSAGE) else {
            return Dialect::Spec;
        };
        if number == 2 {
            return if wire_type == VARINT {
                Dialect::Nim
            } else {
                Dialect::Spec
            };
        }
        let site = Site::Field {
            number,
            name: "unknown",
        };
        if r.skip(site, wire_type, tag_at).is_err() {
            return Dialect::Spec;
        }
    }
    Dialect::Spec
}

/// Number of well-formed top-level fields numbered `number` from `from` on
/// (stops at the first malformed tag; the decoder reports it), and the end
/// of the run of such fields that starts at `from`.
fn count_fields(buf: &[u8], from: usize, number: u32) -> (usize, usize) {
    let mut r = Reader::new(buf, from, buf.len());
    let mut n = 0;
    // End of the run of consecutive fields `number` starting at `from`.
    let mut run_end = from;
    let mut in_run = true;
    while !r.at_end() {
        let tag_at = r.pos;
        let Ok((num, wire_type)) = r.tag(WITHIN_MESSAGE) else {
            break;
        };
        n += usize::from(num == number);
        let site = Site::Field {
            number: num,
            name: "unknown",
        };
        if r.skip(site, wire_type, tag_at).is_err() {
            break;
        }
        in_run &= num == number;
        if in_run {
            run_end = r.pos;
        }
    }
    (n, run_end)
}

/// A stretch of the input already known to be valid UTF-8, and where it
/// starts: the strings of the history entries inside it are sliced from it
/// instead of being validated one by one.
///
/// The usual causal history (ids and sender ids of ASCII characters, no
/// binary hints, one-byte lengths) is ASCII as a whole, tags and lengths
/// included, so one validation of the whole run costs less than twenty
/// short ones. A slice of valid UTF-8 that starts and ends on character
/// boundaries is valid UTF-8; [`str::get`] checks the boundaries.
#[derive(Clone, Copy)]
struct Checked<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Checked<'a> {
    /// The text of `buf[start..end]`, if it lies inside the checked stretch
    /// (`None` otherwise, or when it does not start and end on character
    /// boundaries: then it is not valid UTF-8 on its own).
    #[inline]
    fn get(&self, start: usize, end: usize) -> Option<&'a str> {
        let s = start.checked_sub(self.at)?;
        let e = end.checked_sub(self.at)?;
        self.text.get(s..e)
    }
}

/// The text of `b`, from the checked stretch when it covers `b` (which
/// starts at `at` in the input), else validated on its own.
#[inline]
fn text_of<'a>(b: &'a [u8], at: usize, checked: Option<Checked<'a>>) -> Option<&'a str> {
    match checked {
        Some(c) if at >= c.at && at + b.len() <= c.at + c.text.len() => c.get(at, at + b.len()),
        _ => std::str::from_utf8(b).ok(),
    }
}

/// Decodes one message, detecting its dialect (see the module documentation for the rule).
pub fn decode(bytes: Bytes, limits: &Limits) -> Result<Decoded, DecodeError> {
    let d = decode_ref(&bytes, limits)?;
    Ok(Decoded {
        dialect: d.dialect,
        message: d.message.to_message(),
    })
}

/// Decodes one message in the given dialect.
pub fn decode_as(bytes: Bytes, dialect: Dialect, limits: &Limits) -> Result<Message, DecodeError> {
    check_size(&bytes, limits)?;
    decode_message(&bytes, dialect, limits).map(|m| m.to_message())
}

/// Like [`decode_as`], without copying anything (see [`decode_ref`]).
pub fn decode_ref_as<'a>(
    bytes: &'a Bytes,
    dialect: Dialect,
    limits: &Limits,
) -> Result<MessageRef<'a>, DecodeError> {
    check_size(bytes, limits)?;
    decode_message(bytes, dialect, limits)
}

/// Like [`decode`], without copying anything: ids are `&str`s borrowed from
/// `bytes`, hints, the bloom filter and the content are [`Bytes::slice`]s of
/// it. Same rules, limits and errors as [`decode`].
pub fn decode_ref<'a>(bytes: &'a Bytes, limits: &Limits) -> Result<DecodedRef<'a>, DecodeError> {
    check_size(bytes, limits)?;
    let dialect = detect(bytes);
    let message = decode_message(bytes, dialect, limits)?;
    Ok(DecodedRef { dialect, message })
}

fn decode_message<'a>(
    input: &'a Bytes,
    dialect: Dialect,
    limits: &Limits,
) -> Result<MessageRef<'a>, DecodeError> {
    let buf: &'a [u8] = input;
    let nim = dialect == Dialect::Nim;
    let mut r = Reader::new(buf, 0, buf.len());
    let mut msg = MessageRef::default();
    let (mut has_id, mut has_lamport, mut has_channel, mut has_content) =
        (false, false, false, false);
    // The run of history entries, validated as a whole (see `Checked`).
    let mut history_text: Option<Checked<'a>> = None;

    while !r.at_end() {
        let tag_at = r.pos;
        let (number, wire_type) = r.tag(WITHIN_MESSAGE)?;
        let Some(field) = Field::from_number(dialect, number) else {
            r.skip(
                Site::Field {
                    number,
                    name: "unknown",
                },
                wire_type,
                tag_at,
            )?;
            continue;
        };
        let site = field.site(dialect);
        if field == Field::Lamport {
            expect_wire_type(site, VARINT, wire_type, tag_at)?;
            msg.lamport_timestamp = Some(r.varint(site)?);
            has_lamport = true;
            continue;
        }
        expect_wire_type(site, LEN, wire_type, tag_at)?;
        let (start, end) = r.len_delimited(site)?;
        let value = r.bytes(start, end);
        match field {
            Field::SenderId => {
                msg.sender_id = id_string(value, start, site, limits.max_id_len, tag_at)?;
            }
            Field::MessageId => {
                msg.message_id = id_string(value, start, site, limits.max_id_len, tag_at)?;
                has_id = true;
            }
            Field::ChannelId => {
                msg.channel_id = id_string(value, start, site, limits.max_id_len, tag_at)?;
                has_channel = true;
            }
            Field::History => {
                if msg.causal_history.len() >= limits.max_causal_history {
                    return Err(error(
                        tag_at,
                        DecodeErrorKind::TooManyHistoryEntries {
                            max: limits.max_causal_history,
                        },
                    ));
                }
                if msg.causal_history.is_empty() {
                    // One exact allocation (growing by doubling cost a large
                    // reallocation per message); the count is bounded by the
                    // input and the limit.
                    let (n, run_end) = count_fields(buf, tag_at, Field::History.number(dialect));
                    msg.causal_history
                        .reserve_exact(n.min(limits.max_causal_history));
                    history_text = std::str::from_utf8(&buf[tag_at..run_end])
                        .ok()
                        .map(|text| Checked { text, at: tag_at });
                }
                let entry = decode_entry(
                    input,
                    (start, end),
                    dialect,
                    List::History,
                    limits,
                    tag_at,
                    history_text,
                )?;
                msg.causal_history.push(entry);
                // The entries that follow in the usual layout (one-byte tag
                // and length, see `entry_fast`) are read here, without the
                // general field loop; at the first that is not, the loop
                // takes over, with the same result and errors.
                let number = Field::History.number(dialect);
                // A one-byte tag (field numbers below 16; both dialects').
                let tag = (number << 3 | u32::from(LEN)) as u8;
                while number < 16 && msg.causal_history.len() < limits.max_causal_history {
                    let at = r.pos;
                    let (Some(&t), Some(&len)) = (buf.get(at), buf.get(at + 1)) else {
                        break;
                    };
                    let (s, e) = (at + 2, at + 2 + usize::from(len));
                    if t != tag || len >= 0x80 || e > r.end {
                        break;
                    }
                    let Some(entry) = entry_fast(input, s, e, nim, limits, history_text) else {
                        break;
                    };
                    msg.causal_history.push(entry);
                    r.pos = e;
                }
            }
            Field::Repair => {
                if msg.repair_request.len() >= limits.max_repair_request {
                    return Err(error(
                        tag_at,
                        DecodeErrorKind::TooManyRepairEntries {
                            max: limits.max_repair_request,
                        },
                    ));
                }
                let entry = decode_entry(
                    input,
                    (start, end),
                    dialect,
                    List::Repair,
                    limits,
                    tag_at,
                    None,
                )?;
                msg.repair_request.push(entry);
            }
            Field::Bloom => {
                let len = end - start;
                if len > limits.max_bloom_bytes {
                    return Err(error(
                        tag_at,
                        DecodeErrorKind::BloomTooLarge {
                            site,
                            len,
                            max: limits.max_bloom_bytes,
                        },
                    ));
                }
                msg.bloom_filter = if nim && len == 0 {
                    None
                } else {
                    Some(input.slice(start..end))
                };
            }
            Field::Content => {
                msg.content = Some(input.slice(start..end));
                has_content = true;
            }
            // Handled above.
            Field::Lamport => {}
        }
    }

    if nim {
        for (present, field) in [
            (has_id, Field::MessageId),
            (has_lamport, Field::Lamport),
            (has_channel, Field::ChannelId),
            (has_content, Field::Content),
        ] {
            if !present {
                let site = field.site(dialect);
                return Err(error(buf.len(), DecodeErrorKind::MissingField { site }));
            }
        }
    }
    Ok(msg)
}

/// The usual layout of a history entry, read without the general field
/// loop: the id (field 1), an optional hint (field 2) and an optional sender
/// (field 3), in that order, each once, with one-byte lengths, within the
/// limits and valid UTF-8. Anything else (`None`) goes to the general
/// decoder, which gives the same result for this layout and the errors for
/// the rest.
#[inline]
fn entry_fast<'a>(
    input: &'a Bytes,
    start: usize,
    end: usize,
    nim: bool,
    limits: &Limits,
    checked: Option<Checked<'a>>,
) -> Option<HistoryEntryRef<'a>> {
    let buf: &'a [u8] = input;
    let b = buf.get(start..end)?;
    // One field: (value range within `b`, position after it).
    let field = |at: usize, tag: u8, max: usize| -> Option<(usize, usize)> {
        if *b.get(at)? != tag {
            return None;
        }
        let len = usize::from(*b.get(at + 1)?);
        if len >= 0x80 || len > max || at + 2 + len > b.len() {
            return None;
        }
        Some((at + 2, at + 2 + len))
    };
    let (s, e) = field(0, 0x0a, limits.max_id_len)?;
    let message_id = text_of(b.get(s..e)?, start + s, checked)?;
    let mut at = e;
    let mut entry = HistoryEntryRef {
        message_id,
        retrieval_hint: None,
        sender_id: None,
    };
    if b.get(at) == Some(&0x12) {
        let (s, e) = field(at, 0x12, limits.max_hint_len)?;
        entry.retrieval_hint = (!nim || e > s).then(|| input.slice(start + s..start + e));
        at = e;
    }
    if b.get(at) == Some(&0x1a) {
        let (s, e) = field(at, 0x1a, limits.max_id_len)?;
        let sender = text_of(b.get(s..e)?, start + s, checked)?;
        entry.sender_id = (!nim || !sender.is_empty()).then_some(sender);
        at = e;
    }
    (at == b.len()).then_some(entry)
}

/// Decodes the history entry in `input[start..end]`, whose field tag is at
/// `entry_tag_at`; `checked` is a validated stretch of the input around it,
/// if any.
fn decode_entry<'a>(
    input: &'a Bytes,
    (start, end): (usize, usize),
    dialect: Dialect,
    list: List,
    limits: &Limits,
    entry_tag_at: usize,
    checked: Option<Checked<'a>>,
) -> Result<HistoryEntryRef<'a>, DecodeError> {
    let nim = dialect == Dialect::Nim;
    if let Some(entry) = entry_fast(input, start, end, nim, limits, checked) {
        return Ok(entry);
    }
    decode_entry_fields(input, start, end, dialect, list, limits, entry_tag_at)
}

/// [`decode_entry`] by the general field loop.
fn decode_entry_fields<'a>(
    input: &'a Bytes,
    start: usize,
    end: usize,
    dialect: Dialect,
    list: List,
    limits: &Limits,
    entry_tag_at: usize,
) -> Result<HistoryEntryRef<'a>, DecodeError> {
    let nim = dialect == Dialect::Nim;
    let buf: &'a [u8] = input;
    let mut r = Reader::new(buf, start, end);
    let mut entry = HistoryEntryRef::default();
    let mut has_id = false;
    while !r.at_end() {
        let tag_at = r.pos;
        let (number, wire_type) = r.tag(list.within())?;
        let site = list.site(number);
        if !(1..=3).contains(&number) {
            r.skip(site, wire_type, tag_at)?;
            continue;
        }
        expect_wire_type(site, LEN, wire_type, tag_at)?;
        let (vstart, vend) = r.len_delimited(site)?;
        let value = r.bytes(vstart, vend);
        match number {
            1 => {
                entry.message_id = id_string(value, vstart, site, limits.max_id_len, tag_at)?;
                has_id = true;
            }
            2 => {
                if value.len() > limits.max_hint_len {
                    return Err(error(
                        tag_at,
                        DecodeErrorKind::HintTooLong {
                            site,
                            len: value.len(),
                            max: limits.max_hint_len,
                        },
                    ));
                }
                entry.retrieval_hint = if nim && value.is_empty() {
                    None
                } else {
                    Some(input.slice(vstart..vend))
                };
            }
            _ => {
                let sender = id_string(value, vstart, site, limits.max_id_len, tag_at)?;
                entry.sender_id = if nim && sender.is_empty() {
                    None
                } else {
                    Some(sender)
                };
            }
        }
    }
    if nim && !has_id {
        return Err(error(
            entry_tag_at,
            DecodeErrorKind::MissingField { site: list.site(1) },
        ));
    }
    Ok(entry)
}

// ---------------------------------------------------------------------------
// Encoding

#[inline]
fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn tag_len(number: u32) -> usize {
    varint_len(u64::from(number) << 3)
}

#[inline]
fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// Size of a LEN field with a payload of `len` bytes.
#[inline]
fn len_field_len(number: u32, len: usize) -> usize {
    tag_len(number) + varint_len(len as u64) + len
}

#[inline]
fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_tag(out, number, LEN);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Which optional entry fields a dialect writes.
struct EntryFields<'a> {
    id: Option<&'a str>,
    hint: Option<&'a [u8]>,
    sender: Option<&'a str>,
}

/// A history entry as the encoder reads it: borrowed parts, so that an
/// entry kept in another form (the core's stored messages) is encoded
/// without building a [`HistoryEntry`] first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryParts<'a> {
    pub id: &'a str,
    pub hint: Option<&'a [u8]>,
    pub sender: Option<&'a str>,
}

impl HistoryEntry {
    pub(crate) fn parts(&self) -> EntryParts<'_> {
        EntryParts {
            id: &self.message_id,
            hint: self.retrieval_hint.as_deref(),
            sender: self.sender_id.as_deref(),
        }
    }
}

fn entry_fields(entry: EntryParts<'_>, dialect: Dialect) -> EntryFields<'_> {
    let EntryParts { id, hint, sender } = entry;
    match dialect {
        Dialect::Spec => EntryFields {
            id: Some(id).filter(|s| !s.is_empty()),
            hint,
            sender,
        },
        Dialect::Nim => EntryFields {
            id: Some(id),
            hint: hint.filter(|h| !h.is_empty()),
            sender: sender.filter(|s| !s.is_empty()),
        },
    }
}

fn entry_body_len(entry: EntryParts<'_>, dialect: Dialect) -> usize {
    let f = entry_fields(entry, dialect);
    f.id.map_or(0, |s| len_field_len(1, s.len()))
        + f.hint.map_or(0, |h| len_field_len(2, h.len()))
        + f.sender.map_or(0, |s| len_field_len(3, s.len()))
}

fn entries_len<'a>(
    entries: impl Iterator<Item = EntryParts<'a>>,
    number: u32,
    dialect: Dialect,
) -> usize {
    entries
        .map(|e| len_field_len(number, entry_body_len(e, dialect)))
        .sum()
}

fn put_entries<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = EntryParts<'a>>,
    number: u32,
    dialect: Dialect,
) {
    for entry in entries {
        put_tag(out, number, LEN);
        put_varint(out, entry_body_len(entry, dialect) as u64);
        let f = entry_fields(entry, dialect);
        if let Some(id) = f.id {
            put_len_field(out, 1, id.as_bytes());
        }
        if let Some(hint) = f.hint {
            put_len_field(out, 2, hint);
        }
        if let Some(sender) = f.sender {
            put_len_field(out, 3, sender.as_bytes());
        }
    }
}

fn non_empty(s: &str) -> Option<&[u8]> {
    Some(s.as_bytes()).filter(|b| !b.is_empty())
}

/// A message to encode, as borrowed parts: the history and repair entries
/// come from iterators (cloned once, to compute the exact size first), so
/// that state kept in another form (the core's stored messages) is encoded
/// without building a [`Message`] and its owned entries first.
#[derive(Clone, Copy)]
pub(crate) struct MessageParts<'a, H, R> {
    pub sender: &'a str,
    pub id: &'a str,
    pub channel: &'a str,
    pub lamport: Option<u64>,
    pub history: H,
    pub bloom: Option<&'a [u8]>,
    pub repair: R,
    pub content: Option<&'a [u8]>,
}

/// The entries of a [`Message`] list as parts.
type OwnedEntries<'a> =
    std::iter::Map<std::slice::Iter<'a, HistoryEntry>, fn(&HistoryEntry) -> EntryParts<'_>>;

impl Message {
    fn parts(&self) -> MessageParts<'_, OwnedEntries<'_>, OwnedEntries<'_>> {
        let parts: fn(&HistoryEntry) -> EntryParts<'_> = HistoryEntry::parts;
        MessageParts {
            sender: &self.sender_id,
            id: &self.message_id,
            channel: &self.channel_id,
            lamport: self.lamport_timestamp,
            history: self.causal_history.iter().map(parts),
            bloom: self.bloom_filter.as_deref(),
            repair: self.repair_request.iter().map(parts),
            content: self.content.as_deref(),
        }
    }
}

/// Encodes a message in the given dialect.
pub fn encode(msg: &Message, dialect: Dialect) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(msg, dialect, &mut out)?;
    Ok(out)
}

/// Appends the encoding of a message to `out` (reserving the exact size once).
///
/// On error nothing is appended.
pub fn encode_into(msg: &Message, dialect: Dialect, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_parts_into(msg.parts(), dialect, out)
}

/// [`encode_into`] from parts.
pub(crate) fn encode_parts_into<'a, H, R>(
    m: MessageParts<'a, H, R>,
    dialect: Dialect,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError>
where
    H: Iterator<Item = EntryParts<'a>> + Clone,
    R: Iterator<Item = EntryParts<'a>> + Clone,
{
    match dialect {
        Dialect::Spec => {
            out.reserve(parts_len(&m, dialect));
            encode_spec(m, out);
        }
        Dialect::Nim => {
            let lamport = m.lamport.ok_or(EncodeError::EphemeralInNim)?;
            out.reserve(parts_len(&m, dialect));
            encode_nim(m, lamport, out);
        }
    }
    Ok(())
}

fn encode_spec<'a, H, R>(m: MessageParts<'a, H, R>, out: &mut Vec<u8>)
where
    H: Iterator<Item = EntryParts<'a>>,
    R: Iterator<Item = EntryParts<'a>>,
{
    let d = Dialect::Spec;
    if let Some(s) = non_empty(m.sender) {
        put_len_field(out, Field::SenderId.number(d), s);
    }
    if let Some(s) = non_empty(m.id) {
        put_len_field(out, Field::MessageId.number(d), s);
    }
    if let Some(s) = non_empty(m.channel) {
        put_len_field(out, Field::ChannelId.number(d), s);
    }
    if let Some(lamport) = m.lamport {
        put_tag(out, Field::Lamport.number(d), VARINT);
        put_varint(out, lamport);
    }
    put_entries(out, m.history, Field::History.number(d), d);
    if let Some(bloom) = m.bloom {
        put_len_field(out, Field::Bloom.number(d), bloom);
    }
    put_entries(out, m.repair, Field::Repair.number(d), d);
    if let Some(content) = m.content {
        put_len_field(out, Field::Content.number(d), content);
    }
}

fn encode_nim<'a, H, R>(m: MessageParts<'a, H, R>, lamport: u64, out: &mut Vec<u8>)
where
    H: Iterator<Item = EntryParts<'a>>,
    R: Iterator<Item = EntryParts<'a>>,
{
    let d = Dialect::Nim;
    put_len_field(out, Field::MessageId.number(d), m.id.as_bytes());
    put_tag(out, Field::Lamport.number(d), VARINT);
    put_varint(out, lamport);
    put_entries(out, m.history, Field::History.number(d), d);
    put_len_field(out, Field::ChannelId.number(d), m.channel.as_bytes());
    put_len_field(out, Field::Content.number(d), m.content.unwrap_or_default());
    put_len_field(out, Field::Bloom.number(d), m.bloom.unwrap_or_default());
    if let Some(s) = non_empty(m.sender) {
        put_len_field(out, Field::SenderId.number(d), s);
    }
    put_entries(out, m.repair, Field::Repair.number(d), d);
}

/// The exact number of bytes [`encode`] produces; 0 for a message that cannot
/// be encoded in `dialect` (an ephemeral message in the nim dialect).
pub fn encoded_len(msg: &Message, dialect: Dialect) -> usize {
    parts_len(&msg.parts(), dialect)
}

fn parts_len<'a, H, R>(m: &MessageParts<'a, H, R>, dialect: Dialect) -> usize
where
    H: Iterator<Item = EntryParts<'a>> + Clone,
    R: Iterator<Item = EntryParts<'a>> + Clone,
{
    let d = dialect;
    let opt =
        |b: Option<&[u8]>, field: Field| b.map_or(0, |b| len_field_len(field.number(d), b.len()));
    let history = entries_len(m.history.clone(), Field::History.number(d), d);
    let repair = entries_len(m.repair.clone(), Field::Repair.number(d), d);
    let lamport = |v: u64| tag_len(Field::Lamport.number(d)) + varint_len(v);
    match dialect {
        Dialect::Spec => {
            opt(non_empty(m.sender), Field::SenderId)
                + opt(non_empty(m.id), Field::MessageId)
                + opt(non_empty(m.channel), Field::ChannelId)
                + m.lamport.map_or(0, lamport)
                + history
                + opt(m.bloom, Field::Bloom)
                + repair
                + opt(m.content, Field::Content)
        }
        Dialect::Nim => {
            let Some(ts) = m.lamport else {
                return 0;
            };
            let always = |b: Option<&[u8]>, field: Field| {
                len_field_len(field.number(d), b.map_or(0, <[u8]>::len))
            };
            always(Some(m.id.as_bytes()), Field::MessageId)
                + lamport(ts)
                + history
                + always(Some(m.channel.as_bytes()), Field::ChannelId)
                + always(m.content, Field::Content)
                + always(m.bloom, Field::Bloom)
                + opt(non_empty(m.sender), Field::SenderId)
                + repair
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_put_varint() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX >> 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut r = Reader::new(&out, 0, out.len());
            assert_eq!(r.varint(Site::Tag { within: "test" }).unwrap(), v);
        }
    }

    /// Whatever the fast path accepts, the general loop decodes to the same
    /// entry (random bytes, biased towards the usual layout).
    #[test]
    fn entry_fast_path_agrees_with_the_field_loop() {
        use proptest::prelude::*;
        let field = |tag: u8, v: &[u8]| {
            let mut out = vec![tag, v.len() as u8];
            out.extend_from_slice(v);
            out
        };
        let strat = (
            proptest::collection::vec(any::<u8>(), 0..70),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70)),
            proptest::collection::vec(any::<u8>(), 0..4),
            any::<bool>(),
            any::<bool>(),
        );
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&strat, |(id, hint, sender, junk, ascii, nim)| {
                let fix = |v: Vec<u8>| -> Vec<u8> {
                    if ascii {
                        v.into_iter().map(|b| b'a' + b % 26).collect()
                    } else {
                        v
                    }
                };
                let mut b = field(0x0a, &fix(id));
                if let Some(h) = hint {
                    b.extend(field(0x12, &h));
                }
                if let Some(s) = sender {
                    b.extend(field(0x1a, &fix(s)));
                }
                if junk.first().is_some_and(|x| x % 4 == 0) {
                    b.extend(&junk);
                }
                let input = Bytes::from(b);
                let limits = Limits {
                    max_id_len: 64,
                    ..Limits::default()
                };
                let dialect = if nim { Dialect::Nim } else { Dialect::Spec };
                let n = input.len();
                let slow = || decode_entry_fields(&input, 0, n, dialect, List::History, &limits, 0);
                let fast = entry_fast(&input, 0, n, nim, &limits, None);
                if let Some(fast) = &fast {
                    prop_assert_eq!(Ok(fast.clone()), slow());
                }
                // With the whole entry validated beforehand (as a run of
                // entries is), the strings are sliced instead: the same
                // entry, accepted in the same cases.
                if let Ok(text) = std::str::from_utf8(&input) {
                    let checked = Some(Checked { text, at: 0 });
                    prop_assert_eq!(entry_fast(&input, 0, n, nim, &limits, checked), fast);
                }
                Ok(())
            })
            .unwrap();
    }

    /// A run of history entries whose middle ones are not in the usual
    /// layout (fields out of order, a two-byte length, an unknown field):
    /// each entry decodes as on its own, whichever path reads it.
    #[test]
    fn history_run_with_unusual_entries_in_the_middle() {
        let field = |tag: u8, v: &[u8]| {
            let mut out = vec![tag];
            put_varint(&mut out, v.len() as u64);
            out.extend_from_slice(v);
            out
        };
        let long_id = "x".repeat(130);
        let entries: Vec<Vec<u8>> = vec![
            [field(0x0a, b"a1"), field(0x1a, b"s1")].concat(),
            [field(0x1a, b"s2"), field(0x0a, b"a2")].concat(),
            [field(0x0a, long_id.as_bytes()), field(0x1a, b"s3")].concat(),
            [field(0x0a, b"a4"), field(0x22, b"??")].concat(),
            field(0x0a, b"a5"),
            [field(0x0a, b"a6"), field(0x12, b"h6"), field(0x1a, b"s6")].concat(),
        ];
        let mut msg = [field(0x12, b"m"), field(0x1a, b"c")].concat();
        for e in &entries {
            msg.extend(field(0x5a, e));
        }
        let limits = Limits {
            max_id_len: 200,
            ..Limits::default()
        };
        let input = Bytes::from(msg);
        let d = decode_ref_as(&input, Dialect::Spec, &limits).unwrap();
        type Seen<'a> = (&'a str, Option<&'a [u8]>, Option<&'a str>);
        let got: Vec<Seen> = d
            .causal_history
            .iter()
            .map(|e| (e.message_id, e.retrieval_hint.as_deref(), e.sender_id))
            .collect();
        let want: Vec<Seen> = vec![
            ("a1", None, Some("s1")),
            ("a2", None, Some("s2")),
            (&long_id, None, Some("s3")),
            ("a4", None, None),
            ("a5", None, None),
            ("a6", Some(b"h6"), Some("s6")),
        ];
        assert_eq!(got, want);
        // One entry over the limit: the error names the first extra entry.
        let limits = Limits {
            max_causal_history: 5,
            ..limits
        };
        let err = decode_ref_as(&input, Dialect::Spec, &limits).unwrap_err();
        assert!(
            matches!(err.kind, DecodeErrorKind::TooManyHistoryEntries { max: 5 }),
            "{err:?}"
        );
    }

    /// History runs that are not ASCII: multi-byte ids, binary hints (the
    /// run is then not valid UTF-8 as a whole) and an invalid id, which is
    /// still reported where it is.
    #[test]
    fn history_runs_beyond_ascii() {
        let entry = |id: &str, hint: Option<&[u8]>, sender: Option<&str>| HistoryEntry {
            message_id: id.into(),
            retrieval_hint: hint.map(Bytes::copy_from_slice),
            sender_id: sender.map(str::to_string),
        };
        let mut msg = Message {
            sender_id: "ß-sender".into(),
            message_id: "m".into(),
            channel_id: "c".into(),
            lamport_timestamp: Some(1),
            causal_history: vec![
                entry("idé-1", None, Some("ünï")),
                entry("id-2", None, Some("plain")),
                entry("日本-3", None, None),
            ],
            bloom_filter: None,
            repair_request: vec![],
            content: Some(Bytes::from_static(b"x")),
        };
        let limits = Limits::default();
        for hint in [None, Some(&[0xff, 0xc3, 0x00][..])] {
            msg.causal_history[1].retrieval_hint = hint.map(Bytes::copy_from_slice);
            let bytes = Bytes::from(encode(&msg, Dialect::Spec).unwrap());
            let got = decode_as(bytes, Dialect::Spec, &limits).unwrap();
            assert_eq!(got, msg);
        }
        // The second entry's id made invalid: the same error with or without
        // a binary hint elsewhere in the run.
        msg.causal_history[1].message_id = "id-Z".into();
        for hint in [None, Some(&[0xff][..])] {
            msg.causal_history[0].retrieval_hint = hint.map(Bytes::copy_from_slice);
            let mut raw = encode(&msg, Dialect::Spec).unwrap();
            let at = raw.windows(4).position(|w| w == b"id-Z").unwrap() + 3;
            raw[at] = 0xc3; // a lead byte followed by `\x1a` (the sender tag)
            let err = decode_as(Bytes::from(raw), Dialect::Spec, &limits).unwrap_err();
            assert!(
                matches!(err.kind, DecodeErrorKind::InvalidUtf8 { .. }),
                "{err:?}"
            );
            assert_eq!(err.offset, at);
        }
    }

    #[test]
    fn detection() {
        assert_eq!(detect(&[0x0a, 0x00, 0x10, 0x00]), Dialect::Nim);
        assert_eq!(detect(&[0x0a, 0x00, 0x12, 0x00]), Dialect::Spec);
        assert_eq!(detect(&[]), Dialect::Spec);
        assert_eq!(detect(&[0x0a, 0x05]), Dialect::Spec);
    }
}
