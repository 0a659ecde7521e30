//! Input mutations: byte-level (flips, interesting values, inserts,
//! deletions, duplications, truncations), dictionary tokens, splices with
//! another corpus input, and JSON-aware mutations of a parsed document.

use serde_json::Value;

/// xorshift64*: small, fast and deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes that often sit on a parser's edges.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, b'\n', b'\r', b' ', b'"', b'\\', b'{', b'}',
    b'[', b']', b',', b':', b'-', b'+', b'0', b'9', b'e', b'.', b'=', b'/', 0xc3, 0xe2, 0xf0,
];

/// Tokens inserted or substituted whole (JSON, note and DER edges).
const DICTIONARY: &[&str] = &[
    "null",
    "true",
    "false",
    "-1",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "0.5",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999999",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\\u0000",
    "{}",
    "[]",
    "[[[[[[[[[[[[[[[[",
    "{\"a\":1,\"a\":2}",
    "\n\n",
    "\n",
    "\u{2014} ",
    "old ",
    "old 18446744073709551616\n",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "====",
    "\u{feff}",
    "\u{1F600}",
    "\"v\":1,",
    "\"v\":2,",
    "\"metadata\":",
    "\"receipt\":",
    "\"format\":",
    "0x",
    "0xffffffffffffffffffffffffffffffff",
    "\u{0}",
];

/// Caps an input's size so a run does not grow without bound.
pub const MAX_LEN: usize = 256 * 1024;

/// One to five stacked mutations of `input`; `other` is another corpus
/// entry to splice with.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    // JSON-aware first, a third of the time, when the input is JSON.
    if rng.chance(3)
        && let Ok(mut v) = serde_json::from_slice::<Value>(&data)
    {
        for _ in 0..=rng.below(3) {
            mutate_json(rng, &mut v, 0);
        }
        data = serde_json::to_vec(&v).unwrap_or(data);
        if rng.chance(2) {
            return data;
        }
    }
    for _ in 0..=rng.below(5) {
        mutate_bytes(rng, &mut data, other);
    }
    data.truncate(MAX_LEN);
    data
}

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next_u64() as u8;
        }
        3 => {
            let i = rng.below(len + 1);
            data.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
        }
        4 if len > 0 => {
            // Delete a range.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(32));
            data.drain(i..i + n);
        }
        5 if len > 0 => {
            // Duplicate a range.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            let chunk = data[i..i + n].to_vec();
            let at = rng.below(data.len() + 1);
            data.splice(at..at, chunk);
        }
        6 if len > 0 => data.truncate(rng.below(len)),
        7 if !other.is_empty() => {
            // Splice: a prefix of ours, a suffix of the other.
            let i = rng.below(len + 1);
            let j = rng.below(other.len());
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        8 | 9 => {
            let tok = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
            let i = rng.below(len + 1);
            if rng.chance(2) && i < len {
                // Replace a run of digits/letters at i.
                let end = (i..len)
                    .find(|&k| !data[k].is_ascii_alphanumeric())
                    .unwrap_or(len)
                    .max(i + 1);
                data.splice(i..end, tok.iter().copied());
            } else {
                data.splice(i..i, tok.iter().copied());
            }
        }
        10 if len > 0 => {
            // Arithmetic on a digit or a DER length byte.
            let i = rng.below(len);
            let d = (rng.below(33) as u8).wrapping_sub(16);
            data[i] = data[i].wrapping_add(d);
        }
        11 if len > 1 => {
            // Swap two bytes.
            let (i, j) = (rng.below(len), rng.below(len));
            data.swap(i, j);
        }
        _ => data.push(rng.next_u64() as u8),
    }
}

/// Mutate one node of a JSON document.
pub fn mutate_json(rng: &mut Rng, v: &mut Value, depth: usize) {
    match v {
        Value::Object(map) if !map.is_empty() && depth < 8 && !rng.chance(4) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            match rng.below(8) {
                0 => {
                    map.remove(k);
                }
                1 => {
                    let val = map.get(k).cloned().unwrap_or(Value::Null);
                    map.insert(format!("{k}_x"), val);
                }
                _ => {
                    if let Some(child) = map.get_mut(k) {
                        mutate_json(rng, child, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 8 && !rng.chance(4) => {
            let i = rng.below(items.len());
            match rng.below(6) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let dup = items[i].clone();
                    items.insert(i, dup);
                }
                _ => mutate_json(rng, &mut items[i], depth + 1),
            }
        }
        _ => *v = replacement(rng, v),
    }
}

fn replacement(rng: &mut Rng, old: &Value) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => Value::from(-1),
        3 => Value::from(u64::MAX),
        4 => Value::from(i64::MIN),
        5 => serde_json::Number::from_f64(1.5).map_or(Value::Null, Value::Number),
        6 => Value::from(rng.next_u64()),
        7 => Value::String(String::new()),
        8 => Value::String("\u{0}\u{2014}\u{1F600}\u{feff}".into()),
        9 => Value::String("A".repeat(rng.below(5000))),
        10 => Value::Array(vec![old.clone()]),
        11 => serde_json::json!({ "k": old.clone() }),
        12 => match old {
            // Tweak a string: upper-case, truncate or extend.
            Value::String(s) => {
                let mut s = s.clone();
                match rng.below(3) {
                    0 => s = s.to_uppercase(),
                    1 => {
                        let n = rng.below(s.chars().count() + 1);
                        s = s.chars().take(n).collect();
                    }
                    _ => s.push_str("00"),
                }
                Value::String(s)
            }
            Value::Number(n) => Value::from(
                n.as_i64()
                    .unwrap_or(0)
                    .wrapping_add(rng.below(3) as i64 - 1),
            ),
            _ => Value::from(0),
        },
        _ => Value::String(format!("{:x}", rng.next_u64())),
    }
}
