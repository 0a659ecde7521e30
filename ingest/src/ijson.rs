//! I-JSON (RFC 7493) rules that `serde_json` does not enforce by itself.
//!
//! `serde_json::Value` keeps the *last* member of an object whose name
//! repeats (`{"a":1,"a":2}` becomes `{"a":2}`), so a duplicate can never be
//! seen after the fact. These deserializers build the same `Value` (or
//! discard it) while refusing a repeated name in any object, at any depth.
//! Everything else (UTF-8, lone surrogate escapes, number syntax, trailing
//! characters) is still enforced by `serde_json`'s own tokenizer.
//!
//! Hand-written (about 100 lines over serde's visitor API) rather than a
//! dependency: the crates that do this are young single-maintainer ones, and
//! the rule is small and fully tested here.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The error message prefix of a repeated object member name.
pub const DUPLICATE_KEY: &str = "duplicate key";

fn duplicate<E: de::Error>(key: &str) -> E {
    let shown: String = key.chars().take(64).collect();
    E::custom(format_args!(
        "{DUPLICATE_KEY} {shown:?} in an object (I-JSON, RFC 7493, forbids repeated names)"
    ))
}

/// A `serde_json::Value` deserialized with repeated object names refused.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(StrictValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without repeated object names")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(duplicate(&key));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Any JSON value, checked for repeated object names at every depth and
/// then discarded (for fields a reader ignores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrictIgnored;

impl<'de> Deserialize<'de> for StrictIgnored {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IgnoreVisitor)
    }
}

struct IgnoreVisitor;

impl<'de> Visitor<'de> for IgnoreVisitor {
    type Value = StrictIgnored;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without repeated object names")
    }
    fn visit_bool<E>(self, _: bool) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_i64<E>(self, _: i64) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_u64<E>(self, _: u64) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_f64<E>(self, _: f64) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_str<E>(self, _: &str) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_unit<E>(self) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_none<E>(self) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<StrictIgnored, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictIgnored, A::Error> {
        while seq.next_element::<StrictIgnored>()?.is_some() {}
        Ok(StrictIgnored)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictIgnored, A::Error> {
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(KeyStr(key)) = map.next_key()? {
            if seen.contains(&key) {
                return Err(duplicate(&key));
            }
            map.next_value::<StrictIgnored>()?;
            seen.insert(key);
        }
        Ok(StrictIgnored)
    }
}

/// A string borrowed from the input when it has no escapes, owned otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStr<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowVisitor).map(KeyStr)
    }
}

struct CowVisitor;

impl<'de> Visitor<'de> for CowVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Parse JSON text into a `Value`, refusing repeated object names at any
/// depth.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let StrictValue(v) = StrictValue::deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// A seed form of [`StrictValue`], for callers that hold a deserializer.
#[derive(Debug, Clone, Copy, Default)]
pub struct StrictValueSeed;

impl<'de> DeserializeSeed<'de> for StrictValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// The largest integer magnitude I-JSON guarantees to survive a trip through
/// an IEEE 754 double (RFC 7493 §2.2): 2^53 − 1.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// The first integer in `v` (at any depth) whose magnitude exceeds
/// [`MAX_EXACT_INTEGER`]: RFC 8785 writes numbers as doubles, so such an
/// integer would be sealed as a different number than the one sent.
pub fn inexact_integer(v: &Value) -> Option<&serde_json::Number> {
    match v {
        Value::Number(n) => {
            let too_big = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > MAX_EXACT_INTEGER,
                (None, Some(i)) => i.unsigned_abs() > MAX_EXACT_INTEGER,
                (None, None) => false,
            };
            too_big.then_some(n)
        }
        Value::Array(a) => a.iter().find_map(inexact_integer),
        Value::Object(o) => o.values().find_map(inexact_integer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_refused_at_every_depth() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"x":{"a":1,"b":{"c":[{"d":1,"d":2}]}}}"#,
            r#"[{"k":null,"k":null}]"#,
            // The same name once escaped: names compare after unescaping.
            r#"{"a":1,"\u0061":2}"#,
        ] {
            let err = from_slice(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(DUPLICATE_KEY), "{text}: {err}");
            let ignored = serde_json::from_str::<StrictIgnored>(text).unwrap_err();
            assert!(ignored.to_string().contains(DUPLICATE_KEY), "{text}");
        }
    }

    #[test]
    fn distinct_names_parse_to_the_same_value_as_serde_json() {
        for text in [
            r#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}],"d":-1.5e3,"e":"\u00e9","f":null}"#,
            r#"[1,true,false,null,"x",{}]"#,
            r#"18446744073709551615"#,
            r#"-9223372036854775808"#,
        ] {
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(from_slice(text.as_bytes()).unwrap(), want, "{text}");
            serde_json::from_str::<StrictIgnored>(text).unwrap();
        }
        assert!(from_slice(b"{} x").is_err(), "trailing characters");
        assert!(from_slice(br#"["\ud800"]"#).is_err(), "a lone surrogate");
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_found() {
        let ok: Value = serde_json::json!({"a": [9007199254740991u64, -9007199254740991i64, 1.5]});
        assert_eq!(inexact_integer(&ok), None);
        for bad in [
            serde_json::json!({"a": 9007199254740993u64}),
            serde_json::json!([[-9007199254740993i64]]),
            serde_json::json!(u64::MAX),
        ] {
            assert!(inexact_integer(&bad).is_some(), "{bad}");
        }
    }
}
