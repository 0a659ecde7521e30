//! Kafka message format v1 (`docs/kafka-message-v1.md`): decoding and
//! validation into a ledger entry, or a rejection with a machine-readable
//! reason.
//!
//! Decoding is two-speed: a borrowed, typed parse handles every well-formed
//! message; only when it fails does a slower generic parse run to say
//! precisely what is wrong (missing field, wrong type, unsupported version).

use std::borrow::Cow;
use std::collections::HashSet;

use anchord_core::EvidenceAlg;
use anchord_core::entry::{
    MetadataJson, canonical_metadata, validate_external_id, validate_tenant,
};
use anchord_ledger::{NewEntry, Source};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ijson::{self, KeyStr, StrictIgnored, StrictValue};

/// The only format version this build understands.
pub const FORMAT_VERSION: u64 = 1;

/// Machine-readable rejection reasons (`[a-z_]+`), as recorded in the ledger
/// and in the dead-letter envelope.
pub mod reason {
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    pub const MALFORMED_JSON: &str = "malformed_json";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const BAD_FIELD: &str = "bad_field";
    pub const BAD_HASH_HEX: &str = "bad_hash_hex";
    pub const BAD_HASH_LENGTH: &str = "bad_hash_length";
    pub const ALGORITHM_NOT_ACCEPTED: &str = "algorithm_not_accepted";
    pub const OVERSIZED: &str = "oversized";
    pub const UNKNOWN_TENANT: &str = "unknown_tenant";
    /// Produced by the ledger: same (tenant, external id), another hash.
    pub const CONFLICT: &str = "conflict";

    /// Every reason, for metrics and documentation.
    pub const ALL: [&str; 10] = [
        UNSUPPORTED_VERSION,
        MALFORMED_JSON,
        MISSING_FIELD,
        BAD_FIELD,
        BAD_HASH_HEX,
        BAD_HASH_LENGTH,
        ALGORITHM_NOT_ACCEPTED,
        OVERSIZED,
        UNKNOWN_TENANT,
        CONFLICT,
    ];
}

/// A v1 message as a producer writes it (used by the load generator and the
/// tests; the decoder below does not go through this type).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageV1 {
    pub v: u64,
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: String,
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Unix time in milliseconds at the producer.
    pub produced_at: i64,
}

impl MessageV1 {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a MessageV1 always serialises")
    }
}

/// What the decoder needs from the deployment.
#[derive(Debug, Clone)]
pub struct Rules {
    pub tenants: HashSet<String>,
    pub accepted_algs: Vec<EvidenceAlg>,
    pub max_message_bytes: usize,
}

/// A rejected message: reason code and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: &'static str,
    pub detail: String,
}

fn reject(reason: &'static str, detail: impl Into<String>) -> Reject {
    Reject {
        reason,
        detail: detail.into(),
    }
}

/// The typed parse: every field borrowed where the JSON has no escapes.
/// Unknown fields are ignored (forward compatibility within v1), but every
/// member name, at every depth, must be unique (I-JSON): a repeated one fails
/// this parse and the slow path reports it.
///
/// `M` is how the metadata is read: [`MetadataJson`] on the fast path
/// (borrowed, canonicalised without a `serde_json::Value`), [`StrictValue`]
/// on the careful path, which is the decoder as it was before the fast path
/// and still decides every message the fast path does not accept.
struct Fast<'a, M> {
    v: u64,
    tenant: Cow<'a, str>,
    external_id: Cow<'a, str>,
    hash_alg: Cow<'a, str>,
    hash: Cow<'a, str>,
    metadata: Option<M>,
    produced_at: i64,
}

/// A metadata reader: JSON `null` is the same as no metadata.
trait MetadataField {
    fn is_null(&self) -> bool;
}

impl MetadataField for MetadataJson<'_> {
    fn is_null(&self) -> bool {
        MetadataJson::is_null(self)
    }
}

impl MetadataField for StrictValue {
    fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

impl<'de, M: Deserialize<'de> + MetadataField> Deserialize<'de> for Fast<'de, M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FastVisitor(std::marker::PhantomData))
    }
}

struct FastVisitor<M>(std::marker::PhantomData<M>);

impl<'de, M: Deserialize<'de> + MetadataField> serde::de::Visitor<'de> for FastVisitor<M> {
    type Value = Fast<'de, M>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a v1 evidence message (a JSON object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fast<'de, M>, A::Error> {
        use serde::de::Error as _;
        let mut v = None;
        let mut tenant = None;
        let mut external_id = None;
        let mut hash_alg = None;
        let mut hash = None;
        let mut metadata: Option<Option<M>> = None;
        let mut produced_at = None;
        let mut unknown: Vec<Cow<'de, str>> = Vec::new();
        fn put<T, E: serde::de::Error>(slot: &mut Option<T>, name: &str, v: T) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::custom(format_args!("{} {name:?}", ijson::DUPLICATE_KEY)));
            }
            *slot = Some(v);
            Ok(())
        }
        while let Some(KeyStr(key)) = map.next_key()? {
            match key.as_ref() {
                "v" => put(&mut v, "v", map.next_value::<u64>()?)?,
                "tenant" => put(&mut tenant, "tenant", map.next_value::<KeyStr<'de>>()?.0)?,
                "external_id" => put(
                    &mut external_id,
                    "external_id",
                    map.next_value::<KeyStr<'de>>()?.0,
                )?,
                "hash_alg" => put(
                    &mut hash_alg,
                    "hash_alg",
                    map.next_value::<KeyStr<'de>>()?.0,
                )?,
                "hash" => put(&mut hash, "hash", map.next_value::<KeyStr<'de>>()?.0)?,
                "metadata" => {
                    let m: M = map.next_value()?;
                    put(&mut metadata, "metadata", (!m.is_null()).then_some(m))?
                }
                "produced_at" => put(&mut produced_at, "produced_at", map.next_value::<i64>()?)?,
                _ => {
                    if unknown.contains(&key) {
                        return Err(A::Error::custom(format_args!(
                            "{} {key:?}",
                            ijson::DUPLICATE_KEY
                        )));
                    }
                    map.next_value::<StrictIgnored>()?;
                    unknown.push(key);
                }
            }
        }
        Ok(Fast {
            v: v.ok_or_else(|| A::Error::missing_field("v"))?,
            tenant: tenant.ok_or_else(|| A::Error::missing_field("tenant"))?,
            external_id: external_id.ok_or_else(|| A::Error::missing_field("external_id"))?,
            hash_alg: hash_alg.ok_or_else(|| A::Error::missing_field("hash_alg"))?,
            hash: hash.ok_or_else(|| A::Error::missing_field("hash"))?,
            metadata: metadata.flatten(),
            produced_at: produced_at.ok_or_else(|| A::Error::missing_field("produced_at"))?,
        })
    }
}

/// Fields after the shape check, before the content rules.
struct Fields<'a> {
    tenant: Cow<'a, str>,
    external_id: Cow<'a, str>,
    hash_alg: Cow<'a, str>,
    hash: Cow<'a, str>,
    metadata: Option<Metadata<'a>>,
    produced_at: i64,
}

/// The metadata as the parse read it.
enum Metadata<'a> {
    /// The fast path's borrowed reading.
    Borrowed(MetadataJson<'a>),
    /// The careful path's `serde_json::Value`.
    Value(serde_json::Value),
}

/// Latest accepted `produced_at`: 9999-12-31T23:59:59.999Z in Unix
/// milliseconds (the last instant RFC 3339 can write). A larger value is
/// almost always microseconds or nanoseconds sent by mistake.
pub const MAX_PRODUCED_AT_MS: i64 = 253_402_300_799_999;

/// The dead-letter detail of a Kafka tombstone (a record without a value).
pub const TOMBSTONE_DETAIL: &str =
    "the record has no value (a tombstone); a v1 message is a JSON object";

/// Decode a Kafka record's value: `None` is a tombstone (no value at all),
/// which is malformed like an empty value, with its own detail.
pub fn decode_record(payload: Option<&[u8]>, rules: &Rules) -> Result<Decoded, Reject> {
    match payload {
        Some(p) => decode(p, rules),
        None => Err(reject(reason::MALFORMED_JSON, TOMBSTONE_DETAIL)),
    }
}

/// Decode and validate one message value.
///
/// The fast path reads the metadata borrowed from the payload and
/// canonicalises it without building a `serde_json::Value`
/// ([`MetadataJson`]); any message it does not parse goes to the careful
/// path ([`decode_careful`]), so every rejection, and its detail, is the
/// careful path's. The two agree on every message (a property test below).
pub fn decode(payload: &[u8], rules: &Rules) -> Result<Decoded, Reject> {
    if payload.len() > rules.max_message_bytes {
        return Err(oversized(payload, rules));
    }
    match serde_json::from_slice::<Fast<'_, MetadataJson<'_>>>(payload) {
        Ok(f) => {
            if f.v != FORMAT_VERSION {
                return Err(unsupported(&f.v.to_string()));
            }
            check(
                Fields {
                    tenant: f.tenant,
                    external_id: f.external_id,
                    hash_alg: f.hash_alg,
                    hash: f.hash,
                    metadata: f.metadata.map(Metadata::Borrowed),
                    produced_at: f.produced_at,
                },
                rules,
            )
        }
        Err(_) => decode_careful(payload, rules),
    }
}

fn oversized(payload: &[u8], rules: &Rules) -> Reject {
    reject(
        reason::OVERSIZED,
        format!(
            "message is {} bytes, more than the {} allowed",
            payload.len(),
            rules.max_message_bytes
        ),
    )
}

/// The decoder without the fast path: metadata read into a
/// `serde_json::Value` (repeated names refused as they are read) and, when
/// the typed parse fails, the slow parse that says exactly why.
pub fn decode_careful(payload: &[u8], rules: &Rules) -> Result<Decoded, Reject> {
    if payload.len() > rules.max_message_bytes {
        return Err(oversized(payload, rules));
    }
    let fields = match serde_json::from_slice::<Fast<'_, StrictValue>>(payload) {
        Ok(f) => {
            if f.v != FORMAT_VERSION {
                return Err(unsupported(&f.v.to_string()));
            }
            Fields {
                tenant: f.tenant,
                external_id: f.external_id,
                hash_alg: f.hash_alg,
                hash: f.hash,
                metadata: f.metadata.map(|StrictValue(v)| Metadata::Value(v)),
                produced_at: f.produced_at,
            }
        }
        Err(fast_err) => {
            // Report the precise shape or content problem; if there is none,
            // the typed parse failed on something structural only it sees
            // (a duplicated key, say): still malformed.
            let fields = slow_shape(payload)?;
            check(fields, rules)?;
            return Err(reject(
                reason::MALFORMED_JSON,
                format!("not a valid v1 message: {fast_err}"),
            ));
        }
    };
    check(fields, rules)
}

/// A decoded, valid message (everything the ledger entry needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: EvidenceAlg,
    pub hash: Vec<u8>,
    pub metadata: Option<String>,
    pub produced_at_ms: i64,
}

impl Decoded {
    pub fn into_entry(self, source: Source, raw: Bytes) -> NewEntry {
        NewEntry {
            tenant: self.tenant,
            external_id: self.external_id,
            hash_alg: self.hash_alg,
            evidence_hash: self.hash,
            metadata: self.metadata,
            source: Some(source),
            raw,
        }
    }
}

fn unsupported(v: &str) -> Reject {
    let v: String = v.chars().take(40).collect();
    reject(
        reason::UNSUPPORTED_VERSION,
        format!("format version {v} is not supported (this build reads version {FORMAT_VERSION})"),
    )
}

/// Whether JSON number text is an integer literal (`-?(0|[1-9][0-9]*)`, as
/// the JSON grammar allows it), whatever its magnitude.
fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The slow path: say exactly why the typed parse failed.
fn slow_shape(payload: &[u8]) -> Result<Fields<'static>, Reject> {
    let value = ijson::from_slice(payload)
        .map_err(|e| reject(reason::MALFORMED_JSON, format!("not valid JSON: {e}")))?;
    let serde_json::Value::Object(mut obj) = value else {
        return Err(reject(reason::MALFORMED_JSON, "not a JSON object"));
    };
    // The version decides the shape of everything else: check it first. Any
    // integer other than 1 (negative or beyond 64 bits included) is a version
    // this build does not read; anything else is not a version at all.
    match obj.get("v") {
        None | Some(serde_json::Value::Null) => {
            return Err(reject(reason::MISSING_FIELD, "v"));
        }
        Some(v @ serde_json::Value::Number(_)) => {
            #[derive(Deserialize)]
            struct VText<'a> {
                #[serde(borrow)]
                v: &'a RawValue,
            }
            let text = serde_json::from_slice::<VText<'_>>(payload)
                .map(|t| t.v.get().to_owned())
                .unwrap_or_else(|_| v.to_string());
            if !is_integer_literal(&text) {
                return Err(reject(
                    reason::BAD_FIELD,
                    format!("v: must be an integer, got {text:.40}"),
                ));
            }
            if v.as_u64() != Some(FORMAT_VERSION) {
                return Err(unsupported(&text));
            }
        }
        Some(v) => {
            return Err(reject(
                reason::BAD_FIELD,
                format!("v: must be an integer, got {}", type_name(v)),
            ));
        }
    }
    let mut take_str = |name: &'static str| -> Result<String, Reject> {
        match obj.remove(name) {
            None | Some(serde_json::Value::Null) => Err(reject(reason::MISSING_FIELD, name)),
            Some(serde_json::Value::String(s)) => Ok(s),
            Some(other) => Err(reject(
                reason::BAD_FIELD,
                format!("{name}: must be a string, got {}", type_name(&other)),
            )),
        }
    };
    let tenant = take_str("tenant")?;
    let external_id = take_str("external_id")?;
    let hash_alg = take_str("hash_alg")?;
    let hash = take_str("hash")?;
    let produced_at = match obj.remove("produced_at") {
        None | Some(serde_json::Value::Null) => {
            return Err(reject(reason::MISSING_FIELD, "produced_at"));
        }
        Some(v) => v.as_i64().ok_or_else(|| {
            reject(
                reason::BAD_FIELD,
                format!("produced_at: must be an integer (Unix milliseconds), got {v}"),
            )
        })?,
    };
    let metadata = match obj.remove("metadata") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(Metadata::Value(v)),
    };
    Ok(Fields {
        tenant: Cow::Owned(tenant),
        external_id: Cow::Owned(external_id),
        hash_alg: Cow::Owned(hash_alg),
        hash: Cow::Owned(hash),
        metadata,
        produced_at,
    })
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The content rules, in a fixed order (documented).
fn check(f: Fields<'_>, rules: &Rules) -> Result<Decoded, Reject> {
    validate_tenant(&f.tenant).map_err(|e| reject(reason::BAD_FIELD, format!("tenant: {e}")))?;
    if !rules.tenants.contains(f.tenant.as_ref()) {
        return Err(reject(
            reason::UNKNOWN_TENANT,
            format!("tenant {:?} is not configured", f.tenant),
        ));
    }
    validate_external_id(&f.external_id)
        .map_err(|e| reject(reason::BAD_FIELD, format!("external_id: {e}")))?;
    let alg = match f.hash_alg.parse::<EvidenceAlg>() {
        Ok(a) if rules.accepted_algs.contains(&a) => a,
        Ok(a) => {
            return Err(reject(
                reason::ALGORITHM_NOT_ACCEPTED,
                format!("hash_alg {a} is not accepted by this deployment"),
            ));
        }
        Err(_) => {
            return Err(reject(
                reason::ALGORITHM_NOT_ACCEPTED,
                format!(
                    "hash_alg {:?} is unknown",
                    f.hash_alg.chars().take(40).collect::<String>()
                ),
            ));
        }
    };
    let hex = f.hash.as_bytes();
    // const-hex checks every character at once; the byte-at-a-time scan
    // only runs to name the first bad one.
    if !const_hex::check_raw(hex) {
        let i = hex
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or_default();
        return Err(reject(
            reason::BAD_HASH_HEX,
            format!("hash: character {i} is not a hex digit"),
        ));
    }
    if hex.len() != 2 * alg.digest_len() {
        return Err(reject(
            reason::BAD_HASH_LENGTH,
            format!(
                "hash: a {alg} hash is {} hex digits, got {}",
                2 * alg.digest_len(),
                hex.len()
            ),
        ));
    }
    // Into a stack buffer: `hex::decode`'s per-character, collecting
    // decoder was a visible share of ingest's CPU (perf, issue 17).
    let mut digest = [0u8; 64];
    let digest = &mut digest[..hex.len() / 2];
    const_hex::decode_to_slice(hex, digest)
        .map_err(|e| reject(reason::BAD_HASH_HEX, format!("hash: {e}")))?;
    let hash = digest.to_vec();
    let metadata = match f.metadata {
        None => None,
        Some(Metadata::Borrowed(m)) => match m.canonical() {
            Some(canonical) => Some(canonical),
            // Not an object, an integer beyond ±(2^53-1), too long: the
            // same value down the careful path says which.
            None => Some(canonical_value(m.to_value())?),
        },
        Some(Metadata::Value(value)) => Some(canonical_value(value)?),
    };
    if !(0..=MAX_PRODUCED_AT_MS).contains(&f.produced_at) {
        return Err(reject(
            reason::BAD_FIELD,
            format!(
                "produced_at: must be Unix milliseconds in 0 ..= {MAX_PRODUCED_AT_MS} \
                 (9999-12-31T23:59:59.999Z), got {}",
                f.produced_at
            ),
        ));
    }
    Ok(Decoded {
        tenant: f.tenant.into_owned(),
        external_id: f.external_id.into_owned(),
        hash_alg: alg,
        hash,
        metadata,
        produced_at_ms: f.produced_at,
    })
}

/// The metadata's RFC 8785 form, from a `serde_json::Value`.
fn canonical_value(value: serde_json::Value) -> Result<String, Reject> {
    if value.is_object()
        && let Some(n) = ijson::inexact_integer(&value)
    {
        return Err(reject(
            reason::BAD_FIELD,
            format!(
                "metadata: the integer {n} is beyond ±(2^53-1) and would be sealed as \
                 another number (RFC 8785 writes numbers as IEEE 754 doubles); send it as \
                 a string"
            ),
        ));
    }
    canonical_metadata(&value).map_err(|e| reject(reason::BAD_FIELD, format!("metadata: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            tenants: ["icbc-sh".to_string()].into_iter().collect(),
            accepted_algs: vec![EvidenceAlg::Sha256, EvidenceAlg::Sm3],
            max_message_bytes: 16 * 1024,
        }
    }

    const H: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn good() -> serde_json::Value {
        serde_json::json!({
            "v": 1, "tenant": "icbc-sh", "external_id": "LOAN-2025-000017",
            "hash_alg": "sha256", "hash": H,
            "metadata": {"type": "loan-contract", "amount": "250000.00"},
            "produced_at": 1_764_000_000_123i64
        })
    }

    fn with(f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
        let mut v = good();
        f(v.as_object_mut().unwrap());
        serde_json::to_vec(&v).unwrap()
    }

    fn reason_of(payload: &[u8]) -> (&'static str, String) {
        let r = decode(payload, &rules()).expect_err("must be rejected");
        (r.reason, r.detail)
    }

    #[test]
    fn the_documented_example_decodes_with_canonical_metadata() {
        let d = decode(&serde_json::to_vec(&good()).unwrap(), &rules()).unwrap();
        assert_eq!(d.tenant, "icbc-sh");
        assert_eq!(d.hash, hex::decode(H).unwrap());
        assert_eq!(
            d.metadata.as_deref(),
            Some(r#"{"amount":"250000.00","type":"loan-contract"}"#)
        );
        // Uppercase hex, escapes in strings, unknown fields and null metadata.
        let p = with(|o| {
            o.insert("hash".into(), H.to_uppercase().into());
            o.insert("external_id".into(), "LOAN\u{00e9}/\"x\"".into());
            o.insert("trace_id".into(), "abc".into());
            o.insert("metadata".into(), serde_json::Value::Null);
        });
        let d = decode(&p, &rules()).unwrap();
        assert_eq!(d.hash, hex::decode(H).unwrap());
        assert_eq!(d.external_id, "LOAN\u{00e9}/\"x\"");
        assert_eq!(d.metadata, None);
    }

    #[test]
    fn every_rejection_class_gets_its_reason() {
        use reason::*;
        let big = with(|o| {
            o.insert(
                "metadata".into(),
                serde_json::json!({"pad": "x".repeat(20_000)}),
            );
        });
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (big, OVERSIZED, "bytes"),
            (b"{\"v\":1,".to_vec(), MALFORMED_JSON, "JSON"),
            (b"[1,2]".to_vec(), MALFORMED_JSON, "object"),
            (b"".to_vec(), MALFORMED_JSON, "JSON"),
            (with(|o| { o.insert("v".into(), 2.into()); }), UNSUPPORTED_VERSION, "2"),
            (with(|o| { o.remove("v"); }), MISSING_FIELD, "v"),
            (with(|o| { o.remove("hash"); }), MISSING_FIELD, "hash"),
            (with(|o| { o.insert("tenant".into(), serde_json::Value::Null); }), MISSING_FIELD, "tenant"),
            (with(|o| { o.remove("produced_at"); }), MISSING_FIELD, "produced_at"),
            (with(|o| { o.insert("tenant".into(), 5.into()); }), BAD_FIELD, "tenant"),
            (with(|o| { o.insert("tenant".into(), "-x".into()); }), BAD_FIELD, "tenant"),
            (with(|o| { o.insert("external_id".into(), "".into()); }), BAD_FIELD, "external_id"),
            (with(|o| { o.insert("metadata".into(), serde_json::json!([1])); }), BAD_FIELD, "metadata"),
            (with(|o| { o.insert("produced_at".into(), "2025-01-01".into()); }), BAD_FIELD, "produced_at"),
            (with(|o| { o.insert("produced_at".into(), (-5).into()); }), BAD_FIELD, "produced_at"),
            (with(|o| { o.insert("v".into(), "1".into()); }), BAD_FIELD, "v"),
            (with(|o| { o.insert("tenant".into(), "ccb-bj".into()); }), UNKNOWN_TENANT, "ccb-bj"),
            (with(|o| { o.insert("hash_alg".into(), "sha512".into()); }), ALGORITHM_NOT_ACCEPTED, "sha512"),
            (with(|o| { o.insert("hash_alg".into(), "md5".into()); }), ALGORITHM_NOT_ACCEPTED, "md5"),
            (with(|o| { o.insert("hash".into(), format!("{}zz", &H[..62]).into()); }), BAD_HASH_HEX, "62"),
            (with(|o| { o.insert("hash".into(), H[..62].into()); }), BAD_HASH_LENGTH, "62"),
            (with(|o| { o.insert("hash".into(), format!("{H}0").into()); }), BAD_HASH_LENGTH, "65"),
            // A duplicated key: valid JSON, not a valid message.
            (
                format!(r#"{{"v":1,"v":1,"tenant":"icbc-sh","external_id":"x","hash_alg":"sha256","hash":"{H}","produced_at":1}}"#).into_bytes(),
                MALFORMED_JSON,
                "duplicate",
            ),
        ];
        for (payload, want, detail_has) in cases {
            let (got, detail) = reason_of(&payload);
            assert_eq!(
                got,
                want,
                "{}: {detail}",
                String::from_utf8_lossy(&payload[..payload.len().min(120)])
            );
            assert!(
                detail.contains(detail_has),
                "{want}: {detail:?} lacks {detail_has:?}"
            );
            assert!(got.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    fn raw(body: &str) -> Vec<u8> {
        format!(
            r#"{{"v":1,"tenant":"icbc-sh","external_id":"x","hash_alg":"sha256","hash":"{H}","produced_at":1{body}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn duplicate_keys_are_malformed_at_every_depth() {
        for body in [
            r#","metadata":{"a":1,"a":2}"#,
            r#","metadata":{"a":{"b":[{"c":1,"c":1}]}}"#,
            r#","metadata":{"a":1,"\u0061":2}"#,
            r#","trace_id":"t1","trace_id":"t2""#,
            r#","trace":{"span":1,"span":2}"#,
            r#","metadata":null,"metadata":{"a":1}"#,
            r#","v":2"#,
            r#","produced_at":"later""#,
        ] {
            let p = raw(body);
            let (got, detail) = reason_of(&p);
            assert_eq!(got, reason::MALFORMED_JSON, "{body}: {detail}");
            assert!(detail.contains("duplicate key"), "{body}: {detail}");
        }
        // Distinct names at every depth are fine, and sealed as sent.
        let d = decode(
            &raw(r#","metadata":{"a":1,"b":{"a":2,"c":[{"a":3}]}}"#),
            &rules(),
        )
        .unwrap();
        assert_eq!(
            d.metadata.as_deref(),
            Some(r#"{"a":1,"b":{"a":2,"c":[{"a":3}]}}"#)
        );
    }

    #[test]
    fn any_integer_version_other_than_one_is_unsupported_and_anything_else_is_a_bad_field() {
        for (v, want) in [
            ("2", reason::UNSUPPORTED_VERSION),
            ("0", reason::UNSUPPORTED_VERSION),
            ("-1", reason::UNSUPPORTED_VERSION),
            ("18446744073709551616", reason::UNSUPPORTED_VERSION),
            (
                "99999999999999999999999999999999999999",
                reason::UNSUPPORTED_VERSION,
            ),
            ("1.0", reason::BAD_FIELD),
            ("1e0", reason::BAD_FIELD),
            ("\"1\"", reason::BAD_FIELD),
            ("true", reason::BAD_FIELD),
            ("[1]", reason::BAD_FIELD),
        ] {
            let p = format!(
                r#"{{"v":{v},"tenant":"icbc-sh","external_id":"x","hash_alg":"sha256","hash":"{H}","produced_at":1}}"#
            );
            let (got, detail) = reason_of(p.as_bytes());
            assert_eq!(got, want, "v = {v}: {detail}");
            if want == reason::BAD_FIELD {
                assert!(detail.starts_with("v: "), "{detail}");
            } else {
                assert!(detail.contains(&v[..v.len().min(20)]), "{detail}");
            }
        }
        // The version is decided before anything else is looked at.
        let (got, _) = reason_of(br#"{"v":-1}"#);
        assert_eq!(got, reason::UNSUPPORTED_VERSION);
    }

    #[test]
    fn hash_rules_empty_upper_case_and_algorithm() {
        let (got, detail) = reason_of(&with(|o| {
            o.insert("hash".into(), "".into());
        }));
        assert_eq!(
            (got, detail.as_str()),
            (
                reason::BAD_HASH_LENGTH,
                "hash: a sha256 hash is 64 hex digits, got 0"
            )
        );
        // Upper, lower and mixed case are the same digest.
        let lower = decode(&with(|_| {}), &rules()).unwrap();
        for h in [
            H.to_uppercase(),
            format!("{}{}", &H[..32].to_uppercase(), &H[32..]),
        ] {
            let d = decode(
                &with(|o| {
                    o.insert("hash".into(), h.clone().into());
                }),
                &rules(),
            )
            .unwrap();
            assert_eq!(d.hash, lower.hash, "{h}");
        }
        // The same digits under another algorithm are another claim.
        let sm3 = decode(
            &with(|o| {
                o.insert("hash_alg".into(), "sm3".into());
            }),
            &rules(),
        )
        .unwrap();
        assert_eq!(sm3.hash, lower.hash);
        assert_ne!(sm3.hash_alg, lower.hash_alg);
    }

    #[test]
    fn produced_at_is_unix_milliseconds_up_to_the_year_9999() {
        for ok in [0, 1, 1_764_000_000_123, MAX_PRODUCED_AT_MS] {
            let d = decode(
                &with(|o| {
                    o.insert("produced_at".into(), ok.into());
                }),
                &rules(),
            )
            .unwrap();
            assert_eq!(d.produced_at_ms, ok);
        }
        for bad in [
            "-1",
            "253402300800000",
            "1764000000123000",
            "9223372036854775807",
            "9223372036854775808",
            "1.5",
            "1e3",
            "null",
        ] {
            let p = raw("").into_iter().collect::<Vec<u8>>();
            let p = String::from_utf8(p)
                .unwrap()
                .replace(r#""produced_at":1"#, &format!(r#""produced_at":{bad}"#));
            let (got, detail) = reason_of(p.as_bytes());
            if bad == "null" {
                assert_eq!(
                    (got, detail.as_str()),
                    (reason::MISSING_FIELD, "produced_at")
                );
            } else {
                assert_eq!(got, reason::BAD_FIELD, "{bad}: {detail}");
                assert!(detail.starts_with("produced_at: "), "{bad}: {detail}");
            }
        }
    }

    #[test]
    fn metadata_integers_beyond_two_to_the_53_are_refused_not_rounded() {
        let (got, detail) = reason_of(&raw(r#","metadata":{"n":9007199254740993}"#));
        assert_eq!(got, reason::BAD_FIELD, "{detail}");
        assert!(
            detail.starts_with("metadata: ") && detail.contains("9007199254740993"),
            "{detail}"
        );
        let d = decode(
            &raw(r#","metadata":{"n":9007199254740991,"f":0.5}"#),
            &rules(),
        )
        .unwrap();
        assert_eq!(
            d.metadata.as_deref(),
            Some(r#"{"f":0.5,"n":9007199254740991}"#)
        );
    }

    #[test]
    fn a_tombstone_is_malformed_with_its_own_detail() {
        let r = decode_record(None, &rules()).unwrap_err();
        assert_eq!(
            (r.reason, r.detail.as_str()),
            (reason::MALFORMED_JSON, TOMBSTONE_DETAIL)
        );
        let r = decode_record(Some(b""), &rules()).unwrap_err();
        assert_eq!(r.reason, reason::MALFORMED_JSON);
        assert_ne!(r.detail, TOMBSTONE_DETAIL);
    }

    /// Each pair breaks two rules; the one documented first decides.
    #[test]
    fn checks_run_in_the_documented_order() {
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (
                raw(r#","metadata":{"a":1,"a":1},"v":2"#),
                reason::MALFORMED_JSON,
                "duplicate",
            ),
            (
                br#"{"v":2,"tenant":5}"#.to_vec(),
                reason::UNSUPPORTED_VERSION,
                "2",
            ),
            (
                br#"{"tenant":"icbc-sh"}"#.to_vec(),
                reason::MISSING_FIELD,
                "v",
            ),
            (
                with(|o| {
                    o.remove("tenant");
                    o.insert("hash".into(), 5.into());
                }),
                reason::MISSING_FIELD,
                "tenant",
            ),
            (
                with(|o| {
                    o.insert("external_id".into(), 5.into());
                    o.remove("hash");
                }),
                reason::BAD_FIELD,
                "external_id",
            ),
            (
                with(|o| {
                    o.insert("produced_at".into(), "x".into());
                    o.insert("tenant".into(), "-x".into());
                }),
                reason::BAD_FIELD,
                "produced_at",
            ),
            (
                with(|o| {
                    o.insert("tenant".into(), "-x".into());
                    o.insert("hash_alg".into(), "md5".into());
                }),
                reason::BAD_FIELD,
                "tenant",
            ),
            (
                with(|o| {
                    o.insert("tenant".into(), "ccb-sz".into());
                    o.insert("external_id".into(), "".into());
                }),
                reason::UNKNOWN_TENANT,
                "ccb-sz",
            ),
            (
                with(|o| {
                    o.insert("external_id".into(), "a\nb".into());
                    o.insert("hash_alg".into(), "md5".into());
                }),
                reason::BAD_FIELD,
                "external_id",
            ),
            (
                with(|o| {
                    o.insert("hash_alg".into(), "md5".into());
                    o.insert("hash".into(), "zz".into());
                }),
                reason::ALGORITHM_NOT_ACCEPTED,
                "md5",
            ),
            (
                with(|o| {
                    o.insert("hash".into(), "zz".into());
                }),
                reason::BAD_HASH_HEX,
                "hash",
            ),
            (
                with(|o| {
                    o.insert("hash".into(), "ab".into());
                    o.insert("metadata".into(), serde_json::json!([1]));
                }),
                reason::BAD_HASH_LENGTH,
                "2",
            ),
            (
                with(|o| {
                    o.insert("metadata".into(), serde_json::json!([1]));
                    o.insert("produced_at".into(), (-1).into());
                }),
                reason::BAD_FIELD,
                "metadata",
            ),
            (
                with(|o| {
                    o.insert("produced_at".into(), (-1).into());
                }),
                reason::BAD_FIELD,
                "produced_at",
            ),
        ];
        for (payload, want, detail_has) in cases {
            let (got, detail) = reason_of(&payload);
            assert_eq!(got, want, "{}: {detail}", String::from_utf8_lossy(&payload));
            assert!(
                detail.contains(detail_has),
                "{want}: {detail:?} lacks {detail_has:?}"
            );
        }
    }

    mod fast_and_careful {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    prop::char::range('a', 'd'),
                    prop::char::range('\u{0}', '\u{1f}'),
                    Just('"'),
                    Just('\\'),
                    Just('\u{e9}'),
                    Just('\u{fb01}'),
                    Just('\u{1f600}'),
                ],
                0..5,
            )
            .prop_map(|cs| cs.into_iter().collect())
        }

        /// Metadata text: JSON values of every kind, with repeated names,
        /// escaped names, integers around ±2^53 and beyond 64 bits, floats,
        /// whitespace and non-objects.
        fn metadata() -> impl Strategy<Value = String> {
            let number = prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                (9_007_199_254_740_990u64..9_007_199_254_740_994).prop_map(|n| n.to_string()),
                (9_007_199_254_740_990u64..9_007_199_254_740_994).prop_map(|n| format!("-{n}")),
                Just("18446744073709551616".to_string()),
                Just("-0".to_string()),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| f.to_string()),
                Just("1e400".to_string()),
                Just("2.5E-3".to_string()),
            ];
            let leaf = prop_oneof![
                Just("null".to_string()),
                Just("true".to_string()),
                number,
                text().prop_map(|t| serde_json::to_string(&t).unwrap()),
                Just(r#""\ud800""#.to_string()),
            ];
            let value = leaf.prop_recursive(3, 24, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((text(), inner, any::<bool>()), 0..5).prop_map(
                        |members| {
                            let body: Vec<String> = members
                                .iter()
                                .map(|(k, v, escaped)| {
                                    let k = if *escaped {
                                        k.chars()
                                            .map(|c| format!("\\u{:04x}", c as u32))
                                            .collect::<String>()
                                    } else {
                                        serde_json::to_string(k)
                                            .unwrap()
                                            .trim_matches('"')
                                            .to_string()
                                    };
                                    format!("\"{k}\" : {v}")
                                })
                                .collect();
                            format!("{{{}}}", body.join(","))
                        }
                    ),
                ]
            });
            prop_oneof![
                4 => value,
                1 => Just(format!(r#"{{"pad":"{}"}}"#, "x".repeat(8185))),
                1 => Just(format!(r#"{{"pad":"{}"}}"#, "x".repeat(8182))),
            ]
        }

        /// A message around a metadata text, with some fields changed,
        /// repeated or dropped, and sometimes cut or with a byte changed.
        fn payload() -> impl Strategy<Value = Vec<u8>> {
            (
                metadata(),
                prop::sample::select(vec!["", ",\"v\":1", ",\"metadata\":null", ",\"x\":{\"a\":1,\"a\":2}", ",\"x\":[1,{\"b\":2}]", ",\"tenant\":\"icbc-sh\""]),
                prop::sample::select(vec!["1", "2", "\"1\"", "1.0"]),
                prop::sample::select(vec!["\"icbc-sh\"", "\"ccb-bj\"", "5", "\"-x\""]),
                prop::sample::select(vec![H, "zz", "ab"]),
                prop::sample::select(vec!["1", "-1", "\"x\"", "253402300800000"]),
                prop::option::weighted(0.1, (any::<prop::sample::Index>(), any::<u8>(), any::<bool>())),
            )
                .prop_map(|(meta, extra, v, tenant, hash, produced, damage)| {
                    let mut p = format!(
                        r#"{{"v":{v},"tenant":{tenant},"external_id":"x\u00e9","hash_alg":"sha256","hash":"{hash}","metadata":{meta},"produced_at":{produced}{extra}}}"#
                    )
                    .into_bytes();
                    if let Some((at, byte, cut)) = damage {
                        let i = at.index(p.len());
                        if cut {
                            p.truncate(i);
                        } else {
                            p[i] = byte;
                        }
                    }
                    p
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// The fast path decides every message exactly as the careful
            /// path (the decoder before it) does: the same entry, or the
            /// same reason and detail.
            #[test]
            fn the_fast_path_decides_every_message_as_the_careful_path(p in payload()) {
                prop_assert_eq!(decode(&p, &rules()), decode_careful(&p, &rules()), "{}", String::from_utf8_lossy(&p));
            }
        }

        #[test]
        fn known_messages_decide_alike() {
            for body in [
                r#","metadata":{"b":1,"a":{"d":[1,2.5,-0,1e2],"c":"\u0000\n"}}"#,
                r#","metadata":{"n":9007199254740993}"#,
                r#","metadata":{"a":1,"\u0061":2}"#,
                r#","metadata":[1]"#,
                r#","metadata":"x""#,
                r#","metadata":{"\ud83d\ude00":1,"\uffff":2}"#,
                r#","metadata":{"s":"\ud800"}"#,
                r#","metadata":{"n":1e400}"#,
            ] {
                let p = raw(body);
                assert_eq!(decode(&p, &rules()), decode_careful(&p, &rules()), "{body}");
            }
        }
    }

    #[test]
    fn the_load_generator_writes_valid_messages() {
        let g = crate::loadgen::Generator::new("t1", vec!["icbc-sh".into()], 0.0, 0.0);
        for i in 0..50 {
            let m = g.good(i);
            decode(&m.to_bytes(), &rules()).unwrap();
        }
    }
}
