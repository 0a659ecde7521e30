//! Canonical metadata (RFC 8785) straight from a message's JSON text, without
//! building a `serde_json::Value` and without `serde_json_canonicalizer`'s
//! per-member buffers: strings stay borrowed from the text where they have no
//! escapes, each object's members are sorted once (by UTF-16 code units, as
//! RFC 8785 §3.2.3 orders them), and the canonical text is written into one
//! string.
//!
//! This is an accelerator for [`canonical_metadata`], not a second
//! definition: [`MetadataJson::canonical`] answers only where it is certain
//! to give exactly what [`canonical_metadata`] gives for the same value
//! (objects whose integers are within ±(2^53−1), floating-point numbers
//! written by the same `serde_json_canonicalizer` code, the size limit
//! checked alike), and `None` otherwise; the caller then takes
//! [`MetadataJson::to_value`] down the reference path. A property test below
//! holds the two to the same answers.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{MAX_METADATA_LEN, canonical_metadata};

/// Largest integer magnitude written as its digits by both paths: beyond
/// it RFC 8785 writes the nearest double (another number), which ingest
/// refuses before canonicalising.
const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// A JSON value read from text with its strings borrowed where possible,
/// every object's members in canonical order and repeated member names
/// refused (I-JSON, RFC 7493), at any depth.
#[derive(Clone, Debug, PartialEq)]
pub struct MetadataJson<'a>(Node<'a>);

#[derive(Clone, Debug, PartialEq)]
enum Node<'a> {
    Null,
    Bool(bool),
    /// As `serde_json` reads them: non-negative integers as `u64`, negative
    /// ones as `i64`, anything else as `f64`.
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members sorted by name in UTF-16 code unit order, names unique.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> MetadataJson<'a> {
    /// Whether the value is JSON `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.0, Node::Null)
    }

    /// The RFC 8785 form, exactly as [`canonical_metadata`] writes it for
    /// [`MetadataJson::to_value`]; `None` when that is not certain here (not
    /// an object, an integer beyond ±(2^53−1), a number `serde_json` cannot
    /// hold, or longer than [`MAX_METADATA_LEN`]): use the reference path.
    pub fn canonical(&self) -> Option<String> {
        if !matches!(self.0, Node::Object(_)) {
            return None;
        }
        let mut out = String::with_capacity(256);
        write_node(&self.0, &mut out)?;
        (out.len() <= MAX_METADATA_LEN).then_some(out)
    }

    /// The same value as `serde_json` would have read it.
    pub fn to_value(&self) -> serde_json::Value {
        to_value(&self.0)
    }

    /// [`MetadataJson::canonical`], falling back to [`canonical_metadata`]
    /// (which then also says why it cannot be canonicalised).
    pub fn canonical_or_reference(&self) -> Result<String, super::EntryError> {
        match self.canonical() {
            Some(s) => Ok(s),
            None => canonical_metadata(&self.to_value()),
        }
    }
}

fn to_value(n: &Node<'_>) -> serde_json::Value {
    use serde_json::Value;
    match n {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::U64(u) => Value::Number((*u).into()),
        Node::I64(i) => Value::Number((*i).into()),
        Node::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Node::Str(s) => Value::String(s.clone().into_owned()),
        Node::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Node::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone().into_owned(), to_value(v)))
                .collect(),
        ),
    }
}

fn write_node(n: &Node<'_>, out: &mut String) -> Option<()> {
    match n {
        Node::Null => out.push_str("null"),
        Node::Bool(true) => out.push_str("true"),
        Node::Bool(false) => out.push_str("false"),
        Node::U64(u) => {
            if *u > MAX_EXACT_INTEGER {
                return None;
            }
            write!(out, "{u}").ok()?;
        }
        Node::I64(i) => {
            if i.unsigned_abs() > MAX_EXACT_INTEGER {
                return None;
            }
            write!(out, "{i}").ok()?;
        }
        Node::F64(f) => {
            // The reference formatter itself (ECMAScript number form).
            let n = serde_json::Number::from_f64(*f)?;
            out.push_str(&serde_json_canonicalizer::to_string(&n).ok()?);
        }
        Node::Str(s) => write_str(s, out),
        Node::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_node(v, out)?;
            }
            out.push(']');
        }
        Node::Object(o) => {
            out.push('{');
            for (i, (k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_node(v, out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

/// A JSON string as RFC 8785 §3.2.2.2 writes it: `"` and `\` escaped, the
/// controls U+0008, U+0009, U+000A, U+000C and U+000D as `\b \t \n \f \r`,
/// the other controls below U+0020 as `\u00xx` (lower-case hex), everything
/// else as itself.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x09 => "\\t",
            0x0a => "\\n",
            0x0c => "\\f",
            0x0d => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Escaped bytes are ASCII: the slices end on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// RFC 8785 §3.2.3: member names compared as arrays of UTF-16 code units.
fn utf16_order(a: &str, b: &str) -> Ordering {
    // UTF-8 byte order is code point order, which differs from UTF-16 order
    // only between a character above U+FFFF and one in U+E000..=U+FFFF.
    if a.is_ascii() || b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

impl<'de> Deserialize<'de> for MetadataJson<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NodeSeed.deserialize(d).map(MetadataJson)
    }
}

struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A string borrowed from the text when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NodeVisitor).and_then(|n| match n {
            Node::Str(s) => Ok(Name(s)),
            _ => Err(de::Error::custom("an object member name is not a string")),
        })
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without repeated object names")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        // serde_json's `Number` keeps non-negative integers as u64.
        Ok(match u64::try_from(v) {
            Ok(u) => Node::U64(u),
            Err(_) => Node::I64(v),
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        if v.is_finite() {
            Ok(Node::F64(v))
        } else {
            Err(E::custom("a number that is not finite"))
        }
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(NodeSeed)? {
            out.push(v);
        }
        Ok(Node::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Node<'de>)> = Vec::with_capacity(8);
        while let Some(Name(name)) = map.next_key()? {
            let value = map.next_value_seed(NodeSeed)?;
            members.push((name, value));
        }
        // Stable: equal names stay adjacent, in any order, and are refused.
        members.sort_by(|a, b| utf16_order(&a.0, &b.0));
        if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
            let shown: String = w[0].0.chars().take(64).collect();
            return Err(de::Error::custom(format_args!(
                "duplicate key {shown:?} in an object (I-JSON, RFC 7493, forbids repeated names)"
            )));
        }
        Ok(Node::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(text: &str) -> Result<MetadataJson<'_>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let v = MetadataJson::deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    /// The reference: serde_json's value, `canonical_metadata`.
    fn reference(text: &str) -> Result<String, crate::entry::EntryError> {
        canonical_metadata(&serde_json::from_str::<serde_json::Value>(text).unwrap())
    }

    #[test]
    fn known_answers_match_the_reference() {
        for text in [
            r#"{"type":"loan-contract","amount":"250000.00"}"#,
            r#"{"b":1,"a":[true,false,null,-1,0,-0,9007199254740991,-9007199254740991]}"#,
            r#"{"f":1.5,"g":1e21,"h":-2.5e-7,"i":100.0,"j":1E3,"k":18446744073709551616}"#,
            r#"{"esc":"q\"b\\s\/\b\f\n\r\t\u0000\u001f\u007f\u2028\u00e9 \ud83d\ude00"}"#,
            r#"{"\u20ac":1,"\ud83d\ude00":2,"\ufb01":3,"a":4,"":5,"A":6,"aa":7}"#,
            r#"{"nested":{"z":{"y":[{"b":2,"a":1}]},"a":{}},"empty":[]}"#,
            "{ \"spaced\" : [ 1 , 2 ] ,\n\t\"x\" : { } }",
        ] {
            let m = read(text).unwrap();
            assert_eq!(m.canonical(), Some(reference(text).unwrap()), "{text}");
            assert_eq!(
                m.to_value(),
                serde_json::from_str::<serde_json::Value>(text).unwrap()
            );
        }
    }

    #[test]
    fn what_it_cannot_answer_exactly_is_left_to_the_reference() {
        for text in [
            "[1]",
            "\"x\"",
            "null",
            r#"{"n":9007199254740992}"#,
            r#"{"n":-9007199254740992}"#,
        ] {
            assert_eq!(read(text).unwrap().canonical(), None, "{text}");
        }
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_METADATA_LEN));
        let m = read(&big).unwrap();
        assert_eq!(m.canonical(), None);
        assert_eq!(
            m.canonical_or_reference(),
            Err(crate::entry::EntryError::MetadataTooLarge(
                MAX_METADATA_LEN + 10
            ))
        );
    }

    #[test]
    fn repeated_names_are_refused_at_every_depth_and_strings_are_borrowed() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"x":[{"k":{"d":1,"d":1}}]}"#,
        ] {
            let err = read(text).unwrap_err().to_string();
            assert!(err.contains("duplicate key"), "{text}: {err}");
        }
        let text = r#"{"a":"plain","b":"esc\n"}"#;
        let Node::Object(members) = read(text).unwrap().0 else {
            panic!("an object")
        };
        assert!(matches!(members[0].1, Node::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&members[1].1, Node::Str(Cow::Owned(s)) if s == "esc\n"));
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        // Names and strings from a mix of ASCII, controls, escapes, BMP
        // characters above U+E000 and characters above U+FFFF, so that
        // UTF-16 and code point order differ.
        let text = prop::collection::vec(
            prop_oneof![
                prop::char::range('a', 'e'),
                prop::char::range('\u{0}', '\u{1f}'),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('\u{7f}'),
                Just('\u{e9}'),
                Just('\u{2028}'),
                prop::char::range('\u{e000}', '\u{e002}'),
                Just('\u{fb01}'),
                Just('\u{ffff}'),
                prop::char::range('\u{10000}', '\u{10002}'),
                Just('\u{1f600}'),
            ],
            0..6,
        )
        .prop_map(|cs| cs.into_iter().collect::<String>());
        let number = prop_oneof![
            1 => any::<u64>().prop_map(|u| Value::Number(u.into())),
            1 => any::<i64>().prop_map(|i| Value::Number(i.into())),
            3 => (-1000i64..1000).prop_map(|i| Value::Number(i.into())),
            1 => (MAX_EXACT_INTEGER - 1..=MAX_EXACT_INTEGER + 1).prop_map(|u| Value::Number(u.into())),
            2 => any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number,
            text.clone().prop_map(Value::String),
        ];
        let tree = leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(text.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop_oneof![
            tree.clone(),
            prop::collection::btree_map("[a-c\u{e000}\u{10000}]{0,3}", tree, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    proptest! {
        /// Whatever it answers is the reference's answer, and it answers
        /// every object the reference canonicalises whose integers are
        /// exact.
        #[test]
        fn it_answers_exactly_as_the_reference_does(v in arb_json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let m = read(&text).unwrap();
            let want = reference(&text);
            prop_assert_eq!(m.to_value(), serde_json::from_str::<serde_json::Value>(&text).unwrap());
            prop_assert_eq!(m.canonical_or_reference(), want.clone());
            match m.canonical() {
                Some(s) => prop_assert_eq!(Ok(s), want),
                None => {
                    fn inexact(v: &serde_json::Value) -> bool {
                        match v {
                            serde_json::Value::Number(n) => n.as_u64().map_or(
                                n.as_i64().is_some_and(|i| i.unsigned_abs() > MAX_EXACT_INTEGER),
                                |u| u > MAX_EXACT_INTEGER,
                            ),
                            serde_json::Value::Array(a) => a.iter().any(inexact),
                            serde_json::Value::Object(o) => o.values().any(inexact),
                            _ => false,
                        }
                    }
                    prop_assert!(want.is_err() || inexact(&v), "no answer for {}", text);
                }
            }
        }

        /// A repeated name (written once escaped, once not) is refused.
        #[test]
        fn a_repeated_name_is_refused(v in arb_json(), name in "[a-c]{1,3}") {
            let serde_json::Value::Object(o) = v else { return Ok(()) };
            let mut body: Vec<String> = o
                .iter()
                .filter(|(k, _)| **k != name)
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
                .collect();
            let escaped: String = name.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
            body.push(format!("\"{name}\":1"));
            body.insert(0, format!("\"{escaped}\":2"));
            let text = format!("{{{}}}", body.join(","));
            prop_assert!(read(&text).is_err(), "{}", text);
        }
    }
}
