use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{json_error, Position};
use crate::ids::ChannelId;
use crate::model::{Channel, ChannelState, ChannelStats, Status, StatusText};

/// Why a `/status` body could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusError {
    /// Not JSON at all, or truncated.
    Json {
        /// serde_json's description.
        message: String,
        /// Where it went wrong.
        position: Position,
    },
    /// JSON, but not the shape of a `/status` answer.
    Shape {
        /// Which field, and what was wrong with it.
        message: String,
    },
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::Json { message, position } => {
                write!(f, "invalid JSON at line {} column {}: {message}", position.line, position.column)
            }
            StatusError::Shape { message } => f.write_str(message),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StatusError {}

fn shape(message: impl Into<String>) -> StatusError {
    StatusError::Shape { message: message.into() }
}

/// Parses a `/status` body.
///
/// Tolerant by design: unknown fields are kept in `extra`, unknown states in
/// [`ChannelState::Other`], CPU values may be integers or floats, a missing
/// `cpu` or `channels` reads as empty, a missing or `null` status text as
/// empty. Only what would make the answer misleading is an error: a body that
/// is not a JSON object, `channels`/`cpu` that are not arrays, a channel that
/// is not an object, a CPU value that is not a number.
///
/// Read in one pass straight into the model (the poll path runs it for
/// every answer): no `serde_json::Value` in between except for the fields
/// kept as sent, no allocated keys for the fields it knows. A key given
/// twice counts once, with its last value, as in a JSON object read whole;
/// a shape error is reported only once the document is known to be JSON,
/// `cpu`'s before `channels'`, each list's first in index order.
pub fn parse_status(body: &[u8]) -> Result<Status, StatusError> {
    parse_status_like(body, None)
}

/// [`parse_status`], with the lists sized for an answer shaped like
/// `like` (the server's previous one): a server answers with the same
/// number of cores and channels each time, so its lists are allocated
/// once, at their size, instead of grown by doubling. Lists of another
/// size are read as well, grown as needed and trimmed to their length.
pub fn parse_status_like(body: &[u8], like: Option<&Status>) -> Result<Status, StatusError> {
    let sizes = like.map_or((0, 0), |s| (s.cpu.len(), s.channels.len()));
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = TopDocument(sizes).deserialize(&mut de).and_then(|top| de.end().map(|()| top));
    match read {
        Ok(top) => top,
        Err(e) => {
            let (message, position) = json_error(&e);
            Err(StatusError::Json { message, position })
        }
    }
}

/// What a JSON value is, for messages ("a string", "an array"...).
#[derive(Clone, Copy)]
enum Kind {
    Null,
    Bool,
    Number,
    Str,
    Array,
    Object,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::Str => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// What a field expects: the kinds of value it takes, each with what to
/// make of it. Any other kind is read (and skipped) as its [`Kind`], for
/// the caller to name in a message; see [`Shaped`].
trait Shape<'de>: Sized {
    type Out;
    fn null(self) -> Result<Self::Out, Kind> {
        Err(Kind::Null)
    }
    fn number(self, _n: serde_json::Number) -> Result<Self::Out, Kind> {
        Err(Kind::Number)
    }
    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<Self::Out, Kind>, A::Error> {
        drain_seq(seq).map(|()| Err(Kind::Array))
    }
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Result<Self::Out, Kind>, A::Error> {
        drain_map(map).map(|()| Err(Kind::Object))
    }
}

/// Reads any JSON value for a [`Shape`].
struct Shaped<S>(S);

impl<'de, S: Shape<'de>> Visitor<'de> for Shaped<S> {
    type Value = Result<S::Out, Kind>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.null())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(Kind::Bool))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.0.number(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.0.number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // JSON has no infinities or NaN: serde_json never gives one here.
        Ok(serde_json::Number::from_f64(v).map_or(Err(Kind::Number), |n| self.0.number(n)))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(Kind::Str))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.map(map)
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Shaped<S> {
    type Value = Result<S::Out, Kind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

// Skipping reads into a `Value` (on this error path only) rather than
// `IgnoredAny`: serde_json skips with a scanner of its own, whose messages
// for a damaged document differ ("invalid number" for a cut "-", where
// reading says "EOF while parsing a value").

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Value>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<String, Value>()?.is_some() {}
    Ok(())
}

/// The body: an object with `cpu`, `channels` and anything else; the
/// lists' expected lengths.
struct Top((usize, usize));

impl<'de> Shape<'de> for Top {
    type Out = Result<Status, StatusError>;
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Result<Self::Out, Kind>, A::Error> {
        let mut cpu = Ok(Vec::new());
        let mut channels = Ok(Vec::new());
        let mut extra = BTreeMap::new();
        let (cpu_len, channels_len) = self.0;
        while let Some(key) = map.next_key_seed(KeySeed(&["cpu", "channels"]))? {
            match key {
                Key::Known(0) => {
                    cpu = map
                        .next_value_seed(Shaped(CpuList(cpu_len)))?
                        .unwrap_or_else(|k| Err(shape(alloc::format!("\"cpu\" is {}, expected an array", k.name()))));
                }
                Key::Known(_) => {
                    channels = map.next_value_seed(Shaped(ChannelList(channels_len)))?.unwrap_or_else(|k| {
                        Err(shape(alloc::format!("\"channels\" is {}, expected an array", k.name())))
                    });
                }
                Key::Other(name) => {
                    extra.insert(name, map.next_value::<Value>()?);
                }
            }
        }
        Ok(Ok(cpu.and_then(|cpu| Ok(Status { cpu, channels: channels?, extra }))))
    }
}

/// [`Top`], with any other kind of document named in the error.
struct TopDocument((usize, usize));

impl<'de> DeserializeSeed<'de> for TopDocument {
    type Value = Result<Status, StatusError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let top = Shaped(Top(self.0)).deserialize(d)?;
        Ok(top.unwrap_or_else(|k| Err(shape(alloc::format!("expected a JSON object, found {}", k.name())))))
    }
}

/// An object key: one of the names the caller knows (by index), without
/// allocating, or another, kept.
enum Key {
    Known(usize),
    Other(String),
}

struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(self.0.iter().position(|k| *k == v).map_or_else(|| Key::Other(String::from(v)), Key::Known))
    }
}

/// `cpu`: null (none) or an array of numbers: the list, or the first bad
/// item's message; its expected length.
struct CpuList(usize);

impl<'de> Shape<'de> for CpuList {
    type Out = Result<Vec<f32>, StatusError>;
    fn null(self) -> Result<Self::Out, Kind> {
        Ok(Ok(Vec::new()))
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Result<Self::Out, Kind>, A::Error> {
        let mut cpu = Vec::with_capacity(seq.size_hint().unwrap_or(self.0));
        let mut bad = None;
        let mut i = 0;
        while let Some(item) = seq.next_element_seed(Shaped(CpuValue))? {
            if bad.is_none() {
                match item {
                    Ok(Ok(v)) => cpu.push(v),
                    Ok(Err(n)) => bad = Some(shape(alloc::format!("cpu[{i}] is not a finite number: {n}"))),
                    Err(k) => bad = Some(shape(alloc::format!("cpu[{i}] is {}, expected a number", k.name()))),
                }
            }
            i += 1;
        }
        cpu.shrink_to_fit();
        Ok(Ok(bad.map_or(Ok(cpu), Err)))
    }
}

/// One CPU value: a number that fits an `f32` (else the number, for the
/// message).
struct CpuValue;

impl Shape<'_> for CpuValue {
    type Out = Result<f32, serde_json::Number>;
    fn number(self, n: serde_json::Number) -> Result<Self::Out, Kind> {
        // A value beyond f32 (1e80, say) would become infinity.
        Ok(n.as_f64().map(|f| f as f32).filter(|f| f.is_finite()).ok_or(n))
    }
}

/// `channels`: null (none) or an array of objects; its expected length.
struct ChannelList(usize);

impl<'de> Shape<'de> for ChannelList {
    type Out = Result<Vec<Channel>, StatusError>;
    fn null(self) -> Result<Self::Out, Kind> {
        Ok(Ok(Vec::new()))
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Result<Self::Out, Kind>, A::Error> {
        let mut channels = Vec::with_capacity(seq.size_hint().unwrap_or(self.0));
        let mut bad = None;
        let mut index = 0;
        while let Some(item) = seq.next_element_seed(Shaped(ChannelObject { index }))? {
            match item {
                Ok(ch) if bad.is_none() => channels.push(ch),
                Ok(_) => {}
                Err(k) => {
                    if bad.is_none() {
                        bad = Some(shape(alloc::format!("channels[{index}] is {}, expected an object", k.name())));
                    }
                }
            }
            index += 1;
        }
        channels.shrink_to_fit();
        Ok(Ok(bad.map_or(Ok(channels), Err)))
    }
}

/// One channel: an object with `state`, `status` and anything else.
struct ChannelObject {
    index: usize,
}

impl<'de> Shape<'de> for ChannelObject {
    type Out = Channel;
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Result<Channel, Kind>, A::Error> {
        let mut state = None;
        let mut status = None;
        let mut extra = BTreeMap::new();
        while let Some(key) = map.next_key_seed(KeySeed(&["state", "status"]))? {
            match key {
                Key::Known(0) => state = Some(map.next_value_seed(STATE_TEXT)?),
                Key::Known(_) => status = Some(map.next_value_seed(STATUS_TEXT)?),
                Key::Other(name) => {
                    extra.insert(name, map.next_value::<Value>()?);
                }
            }
        }
        let state = state.unwrap_or_else(|| ChannelState::Other(String::new()));
        let status = status.unwrap_or_default();
        let stats = parse_stats(&status);
        Ok(Ok(Channel { id: ChannelId::from_index(self.index), state, status, stats, extra: extra.into() }))
    }
}

/// A field meant to be text, read into a `T`: a string straight through
/// `from_str` (no `String` on the way), anything else as [`Text`] and
/// then `from_text`. Every channel of every answer has two: its `state`
/// ([`STATE_TEXT`]) and its `status` ([`STATUS_TEXT`]).
struct TextInto<T> {
    from_str: fn(&str) -> T,
    from_text: fn(TextValue) -> T,
}

impl<T> Clone for TextInto<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TextInto<T> {}

/// `state`: a known state read without allocating its text.
const STATE_TEXT: TextInto<ChannelState> = TextInto {
    from_str: ChannelState::parse,
    from_text: |text| match text {
        TextValue::Str(s) => ChannelState::parse(&s),
        TextValue::Null => ChannelState::Other(String::new()),
        TextValue::Json(v) => ChannelState::Other(v.to_string()),
    },
};

/// `status`: a string read straight into the [`StatusText`] (inline when
/// short: no allocation).
const STATUS_TEXT: TextInto<StatusText> = TextInto {
    from_str: |s| StatusText::from(s),
    from_text: |text| match text {
        TextValue::Str(s) => StatusText::from(s),
        TextValue::Null => StatusText::default(),
        TextValue::Json(v) => StatusText::from(v.to_string()),
    },
};

impl<'de, T> DeserializeSeed<'de> for TextInto<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T> Visitor<'de> for TextInto<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.from_str)(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Text.visit_unit().map(self.from_text)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Text.visit_bool(v).map(self.from_text)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Text.visit_u64(v).map(self.from_text)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Text.visit_i64(v).map(self.from_text)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Text.visit_f64(v).map(self.from_text)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        Text.visit_seq(seq).map(self.from_text)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        Text.visit_map(map).map(self.from_text)
    }
}

/// A field meant to be text: the text, null, or any other value kept whole
/// (its JSON is then used as the text).
enum TextValue {
    Str(String),
    Null,
    Json(Value),
}

struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = TextValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TextValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = TextValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<TextValue, E> {
        Ok(TextValue::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TextValue, E> {
        Ok(TextValue::Str(String::from(v)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<TextValue, E> {
        Ok(TextValue::Str(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<TextValue, E> {
        Ok(TextValue::Json(Value::Bool(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextValue, E> {
        Ok(TextValue::Json(Value::Number(v.into())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextValue, E> {
        Ok(TextValue::Json(Value::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TextValue, E> {
        Ok(TextValue::Json(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextValue, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(TextValue::Json(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextValue, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            fields.insert(k, v);
        }
        Ok(TextValue::Json(Value::Object(fields)))
    }
}

/// Parses a running channel's status text, `HH:MM:SS <fps>fps@<kbps>Kbps`
/// (hours may exceed 24, fps and kbps may have decimals, case and extra
/// spaces do not matter). `None` when the text does not match.
pub fn parse_stats(text: &str) -> Option<ChannelStats> {
    canonical_stats(text.as_bytes()).unwrap_or_else(|| general_stats(text))
}

/// The text as servers write it, `H:MM:SS <fps>fps@<kbps>Kbps` with whole
/// numbers and one space, read byte by byte: `Some(stats)` for exactly that
/// form, `None` for anything else (then [`general_stats`] decides). It
/// reads what [`general_stats`] would: a whole number converts to `f32`
/// with the same rounding as parsing it.
fn canonical_stats(b: &[u8]) -> Option<Option<ChannelStats>> {
    fn number(b: &[u8], at: &mut usize) -> Option<u64> {
        let start = *at;
        let mut n: u64 = 0;
        while let Some(d) = b.get(*at).filter(|c| c.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            *at += 1;
        }
        (*at > start).then_some(n)
    }
    fn expect(b: &[u8], at: &mut usize, word: &[u8]) -> Option<()> {
        let end = *at + word.len();
        b.get(*at..end).filter(|w| w.eq_ignore_ascii_case(word))?;
        *at = end;
        Some(())
    }
    let mut at = 0;
    let h = number(b, &mut at)?;
    expect(b, &mut at, b":")?;
    let m = number(b, &mut at)?;
    expect(b, &mut at, b":")?;
    let s = number(b, &mut at)?;
    expect(b, &mut at, b" ")?;
    let fps = number(b, &mut at)?;
    expect(b, &mut at, b"fps@")?;
    let kbps = number(b, &mut at)?;
    expect(b, &mut at, b"kbps")?;
    if at != b.len() || m >= 60 || s >= 60 {
        return None;
    }
    Some(h.checked_mul(3600).and_then(|h| h.checked_add(m * 60 + s)).map(|uptime_s| ChannelStats {
        uptime_s,
        fps: fps as f32,
        kbps: kbps as f32,
    }))
}

/// [`parse_stats`] for every form it takes.
fn general_stats(text: &str) -> Option<ChannelStats> {
    let text = text.trim();
    let (clock, rest) = text.split_once(char::is_whitespace)?;
    let mut parts = clock.split(':');
    let h: u64 = digits(parts.next()?)?;
    let m: u64 = digits(parts.next()?)?;
    let s: u64 = digits(parts.next()?)?;
    if parts.next().is_some() || m >= 60 || s >= 60 {
        return None;
    }
    let (fps_part, kbps_part) = rest.trim().split_once('@')?;
    let fps = number_with_suffix(fps_part, "fps")?;
    let kbps = number_with_suffix(kbps_part, "kbps")?;
    Some(ChannelStats { uptime_s: h.checked_mul(3600)?.checked_add(m * 60 + s)?, fps, kbps })
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn number_with_suffix(s: &str, suffix: &str) -> Option<f32> {
    let s = s.trim();
    let split = s.len().checked_sub(suffix.len())?;
    if !s.is_char_boundary(split) || !s[split..].eq_ignore_ascii_case(suffix) {
        return None;
    }
    let n = s[..split].trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    n.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// The parser as first written, through a whole `serde_json::Value`: the
/// reference the one-pass parser is checked against.
#[cfg(test)]
mod reference {
    use alloc::collections::BTreeMap;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;
    use serde_json::Value;

    use super::super::json_error;
    use super::{parse_stats, shape, StatusError};
    use crate::ids::ChannelId;
    use crate::model::{Channel, ChannelState, Status};

    /// Parses a `/status` body through a whole `serde_json::Value`.
    ///
    /// Tolerant by design: unknown fields are kept in `extra`, unknown states in
    /// [`ChannelState::Other`], CPU values may be integers or floats, a missing
    /// `cpu` or `channels` reads as empty, a missing or `null` status text as
    /// empty. Only what would make the answer misleading is an error: a body that
    /// is not a JSON object, `channels`/`cpu` that are not arrays, a channel that
    /// is not an object, a CPU value that is not a number.
    pub(super) fn parse_status(body: &[u8]) -> Result<Status, StatusError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            let (message, position) = json_error(&e);
            StatusError::Json { message, position }
        })?;
        let Value::Object(mut top) = value else {
            return Err(shape(alloc::format!("expected a JSON object, found {}", kind(&value))));
        };
        let cpu = match top.remove("cpu") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Number(n) => {
                        // A value beyond f32 (1e80, say) would become infinity.
                        n.as_f64()
                            .map(|f| f as f32)
                            .filter(|f| f.is_finite())
                            .ok_or_else(|| shape(alloc::format!("cpu[{i}] is not a finite number: {n}")))
                    }
                    other => Err(shape(alloc::format!("cpu[{i}] is {}, expected a number", kind(other)))),
                })
                .collect::<Result<Vec<f32>, _>>()?,
            Some(other) => return Err(shape(alloc::format!("\"cpu\" is {}, expected an array", kind(&other)))),
        };
        let channels = match top.remove("channels") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                items.into_iter().enumerate().map(|(i, v)| parse_channel(i, v)).collect::<Result<Vec<Channel>, _>>()?
            }
            Some(other) => return Err(shape(alloc::format!("\"channels\" is {}, expected an array", kind(&other)))),
        };
        Ok(Status { cpu, channels, extra: top.into_iter().collect() })
    }

    fn parse_channel(index: usize, value: Value) -> Result<Channel, StatusError> {
        let Value::Object(mut fields) = value else {
            return Err(shape(alloc::format!("channels[{index}] is {}, expected an object", kind(&value))));
        };
        let state = match fields.remove("state") {
            Some(Value::String(s)) => ChannelState::parse(&s),
            None | Some(Value::Null) => ChannelState::Other(String::new()),
            Some(other) => ChannelState::Other(other.to_string()),
        };
        let status = match fields.remove("status") {
            Some(Value::String(s)) => s,
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        let stats = parse_stats(&status);
        Ok(Channel {
            id: ChannelId::from_index(index),
            state,
            status: status.into(),
            stats,
            extra: fields.into_iter().collect::<BTreeMap<_, _>>().into(),
        })
    }

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{parse_status, reference};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e3f64..1e3).prop_map(Value::from),
            prop_oneof![Just(1e80), Just(-3.5e38), Just(3.4e38), Just(1e-50)].prop_map(Value::from),
            prop::sample::select(vec![
                "idle",
                "running",
                "stopping",
                "starting",
                "",
                "01:02:03 25fps@3000Kbps",
                "1:2 x",
                "é\"\\\n",
            ])
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["state", "status", "fps", "x"]), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (String::from(k), v)).collect())),
            ]
        })
    }

    /// An object's text from (key, value) pairs: keys may repeat.
    fn object(pairs: &[(&str, Value)]) -> String {
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| alloc::format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
            .collect();
        alloc::format!("{{{}}}", fields.join(","))
    }

    fn channel() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => prop::collection::vec((prop::sample::select(vec!["state", "status", "extra"]), value()), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (String::from(k), v)).collect())),
            1 => value(),
        ]
    }

    fn top_field() -> impl Strategy<Value = (&'static str, Value)> {
        prop_oneof![
            (Just("cpu"), prop_oneof![prop::collection::vec(leaf(), 0..5).prop_map(Value::Array), leaf()]),
            (Just("channels"), prop_oneof![prop::collection::vec(channel(), 0..5).prop_map(Value::Array), value()]),
            (prop::sample::select(vec!["uptime", "version", "cpu\u{0}"]), value()),
        ]
    }

    fn document() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::collection::vec(top_field(), 0..5).prop_map(|pairs| object(&pairs)),
            1 => value().prop_map(|v| serde_json::to_string(&v).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// The one-pass parser says exactly what the parser through a whole
        /// `Value` says: the same status, or the same error at the same place.
        #[test]
        fn agrees_with_the_reference_on_documents(doc in document()) {
            prop_assert_eq!(parse_status(doc.as_bytes()), reference::parse_status(doc.as_bytes()), "{}", doc);
        }

        /// The byte-by-byte reading of the usual form says what the general
        /// one says, for that form and for near misses.
        #[test]
        fn canonical_stats_agree_with_the_general_reading(
            h in prop_oneof![0u64..100, any::<u64>()],
            m in 0u64..70,
            s in 0u64..70,
            fps in prop_oneof![0u64..100, any::<u64>()],
            kbps in prop_oneof![0u64..100_000, any::<u64>()],
            words in prop::sample::select(vec![("fps@", "Kbps"), ("FPS@", "kbps"), ("fps @", "Kbps"), ("fps@", "Kbps ")]),
            damage in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(b"0:. @x".to_vec()))),
        ) {
            let mut text = alloc::format!("{h:02}:{m:02}:{s:02} {fps}{}{kbps}{}", words.0, words.1).into_bytes();
            if let Some((at, byte)) = damage {
                let i = at.index(text.len());
                text[i] = byte;
            }
            let text = String::from_utf8(text).unwrap();
            let usual = damage.is_none() && !words.0.contains(' ') && !words.1.contains(' ') && m < 60 && s < 60;
            if usual {
                prop_assert!(super::canonical_stats(text.as_bytes()).is_some(), "the usual form is read byte by byte: {}", text);
            }
            if let Some(fast) = super::canonical_stats(text.as_bytes()) {
                prop_assert_eq!(fast, super::general_stats(&text), "{}", text);
            }
            prop_assert_eq!(super::parse_stats(&text), super::general_stats(&text), "{}", text);
        }

        /// Sized after any previous answer, the parse says the same, and
        /// its lists hold no room beyond their length.
        #[test]
        fn a_size_hint_changes_nothing_but_the_room(doc in document(), like in document()) {
            let like = parse_status(like.as_bytes()).ok();
            let got = super::parse_status_like(doc.as_bytes(), like.as_ref());
            prop_assert_eq!(&got, &parse_status(doc.as_bytes()), "{}", doc);
            if let Ok(st) = got {
                prop_assert_eq!(st.cpu.capacity(), st.cpu.len());
                prop_assert_eq!(st.channels.capacity(), st.channels.len());
            }
        }

        /// ... and on damaged ones (a byte replaced, or the end cut off).
        #[test]
        fn agrees_with_the_reference_on_damaged_documents(
            doc in document(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[]\",:0 an\\".to_vec()),
            cut in any::<bool>(),
        ) {
            let mut bytes = doc.into_bytes();
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
            } else {
                bytes[i] = byte;
            }
            prop_assert_eq!(parse_status(&bytes), reference::parse_status(&bytes));
        }
    }
}
