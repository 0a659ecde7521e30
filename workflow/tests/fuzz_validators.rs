//! Issue 12: every request body and field validator of the workflow API,
//! driven with arbitrary input, never panics.
//!
//! - Property tests (proptest) over the validator functions (template
//!   parsing and rendering, field types, field and product definitions,
//!   statements, keys, signatures, judicial requests, reasons) and over
//!   every serde body type, deserialised from arbitrary JSON and, when it
//!   parses, validated. Rendering is also checked for its bound: the output
//!   is the template with each placeholder replaced once by its literal
//!   value, never larger than the template plus the values it uses.
//! - Over HTTP against the real services: every write route of the OpenAPI
//!   document gets garbage (arbitrary JSON, JSON of the right shape with
//!   hostile values, non-JSON, invalid UTF-8, deep nesting, oversized
//!   bodies, garbage multipart) as every role, and must answer, never with
//!   a 5xx or a dropped connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use anchord_workflow::contracts::{self, Piece};
use anchord_workflow::products::{self, Field};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

/// Text that hits the validators' edges: any Unicode, digits and `x` (ID
/// numbers), keys, placeholder syntax, multi-byte and control characters.
fn arb_text() -> impl Strategy<Value = String> {
    let atoms = vec![
        "{{", "}}", "{", "}", "a", "b", "{{a}}", "{{ b }}", "{{c}}", "x", "X", "1", "0", "é", "借",
        "😀", " ", "\n", "\u{0}", "-", "_", ".", "@", "+", "１", "\u{202e}", "%", "\\", "\"",
    ];
    prop_oneof![
        any::<String>(),
        "[0-9xX]{0,20}",
        "[a-z_][a-z0-9_]{0,70}",
        "[0-9a-fA-F]{0,130}",
        prop::collection::vec(prop::sample::select(atoms), 0..40).prop_map(|v| v.concat()),
    ]
}

/// Keys of every request body, and others.
const KEYS: &[&str] = &[
    "name",
    "template_text",
    "custody",
    "public_key",
    "challenge",
    "proof",
    "contract_type_id",
    "title",
    "variables",
    "signers",
    "signature",
    "reason",
    "product_id",
    "fields",
    "description",
    "channels",
    "key",
    "display_name",
    "type",
    "max_length",
    "required",
    "position",
    "keys",
    "kind",
    "subject_kind",
    "subject_id",
    "institution_id",
    "case_description",
    "purpose",
    "username",
    "password",
    "role",
    "tenant",
    "url",
    "secret",
    "id",
    "fee_cents",
    "current_password",
    "new_password",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => arb_text(),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![Just(i32::MAX as i64), Just(-1i64), Just(0i64), Just(4097)]
            .prop_map(|n| json!(n)),
        arb_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object of known keys with arbitrary values (gets past "unknown
/// field" into the validators more often).
fn arb_shaped() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop::sample::select(KEYS).prop_map(str::to_owned),
        arb_json(),
        0..10,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn arb_body() -> impl Strategy<Value = Value> {
    prop_oneof![arb_json(), arb_shaped()]
}

fn arb_field() -> impl Strategy<Value = Field> {
    (
        arb_text(),
        arb_text(),
        prop_oneof![
            prop::sample::select(products::FIELD_TYPES).prop_map(str::to_owned),
            arb_text()
        ],
        prop_oneof![any::<i32>(), 1..30i32],
        any::<bool>(),
    )
        .prop_map(
            |(key, display_name, field_type, max_length, required)| Field {
                key,
                display_name,
                field_type,
                max_length,
                required,
                disclose_on_certificate: false,
            },
        )
}

fn arb_vars() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop_oneof![
            prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned),
            arb_text()
        ],
        arb_text(),
        0..6,
    )
}

/// The placeholder occurrences of a template and the bytes they take.
fn occurrences(t: &str) -> Vec<&str> {
    contracts::parse_template(t)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var { name, .. } => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(Config { cases: 600, ..Config::default() })]

    #[test]
    fn template_parsing_is_total_and_lossless(t in arb_text()) {
        let pieces = contracts::parse_template(&t);
        let rebuilt: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(s) => *s,
                Piece::Var { raw, .. } => *raw,
            })
            .collect();
        prop_assert_eq!(rebuilt, t.clone());
        for p in &pieces {
            if let Piece::Var { name, .. } = p {
                prop_assert!(contracts::is_placeholder_name(name));
            }
        }
        let names = contracts::placeholders(&t);
        prop_assert!(names.len() <= occurrences(&t).len());
    }

    #[test]
    fn rendering_is_bounded_by_the_template_and_the_values_it_uses(
        t in arb_text(),
        vars in arb_vars(),
        max in prop_oneof![Just(contracts::MAX_BODY_BYTES), 0..200usize],
    ) {
        let names = contracts::placeholders(&t);
        // Unknown variables are always refused, by name.
        let unknown: Vec<&String> = vars.keys().filter(|k| !names.contains(k)).collect();
        match contracts::render(&t, &vars, max) {
            Ok(out) => {
                prop_assert!(unknown.is_empty());
                prop_assert!(out.len() <= max);
                let occ = occurrences(&t);
                let used: usize = occ.iter().map(|n| vars[*n].len()).sum();
                let raw: usize = contracts::parse_template(&t)
                    .iter()
                    .map(|p| match p { Piece::Var { raw, .. } => raw.len(), Piece::Text(_) => 0 })
                    .sum();
                // Exactly the template with each placeholder replaced once.
                prop_assert_eq!(out.len(), t.len() - raw + used);
                prop_assert!(out.len() <= t.len() + used);
                if occ.len() == names.len() {
                    // Each placeholder used once: template + sum of values.
                    let sum: usize = vars.values().map(String::len).sum();
                    prop_assert!(out.len() <= t.len() + sum);
                }
                // Values are literal: each one appears verbatim.
                for n in &names {
                    prop_assert!(out.contains(vars[n].as_str()));
                }
            }
            Err(contracts::RenderError(errs)) => {
                prop_assert!(!errs.is_empty());
                for k in unknown {
                    let key = format!("variables.{k}");
                    prop_assert!(errs.contains_key(&key), "{} not named: {:?}", key, errs);
                }
                for k in errs.keys() {
                    prop_assert!(k.starts_with("variables"));
                }
            }
        }
    }

    #[test]
    fn nested_placeholders_in_values_never_expand(n in 1usize..50, depth in 1usize..6) {
        // Each value names the next placeholder n times: the old code grew
        // it n^depth times.
        let names: Vec<String> = (0..=depth).map(|i| format!("v{i}")).collect();
        let template = format!("{{{{{}}}}}", names[0]);
        let mut vars = BTreeMap::new();
        vars.insert(names[0].clone(), format!("{{{{{}}}}}", names[1]).repeat(n));
        let out = contracts::render(&template, &vars, contracts::MAX_BODY_BYTES).unwrap();
        prop_assert_eq!(out, vars[&names[0]].clone());
        for name in names.iter().skip(1) {
            vars.insert(name.clone(), format!("{{{{{name}}}}}").repeat(n));
        }
        let e = contracts::render(&template, &vars, contracts::MAX_BODY_BYTES).unwrap_err();
        let key = format!("variables.{}", names[1]);
        prop_assert!(e.0.contains_key(&key));
    }

    #[test]
    fn field_type_checks_are_total(t in prop::sample::select(products::FIELD_TYPES), v in arb_text()) {
        let ok = products::check_type(t, &v).is_ok();
        if t == "id_number" {
            prop_assert_eq!(ok, products::valid_id_number(&v));
            if ok {
                prop_assert_eq!(v.chars().count(), 18);
                prop_assert!(v.is_ascii());
            }
        }
        let _ = products::check_type(&v, &v);
        let _ = products::valid_key(&v);
    }

    #[test]
    fn values_are_validated_against_any_template(
        template in prop::collection::vec(arb_field(), 0..6),
        values in prop::collection::btree_map(arb_key(), arb_json(), 0..8),
    ) {
        let values: serde_json::Map<String, Value> = values.into_iter().collect();
        let mut errs = BTreeMap::new();
        for (i, f) in template.iter().enumerate() {
            products::check_field(f, &format!("fields[{i}]."), &mut errs);
        }
        if let Ok(out) = products::validate_values(&template, &values) {
            for (k, v) in &out {
                let n = v.chars().count();
                prop_assert!(template
                    .iter()
                    .any(|f| &f.key == k && n <= f.max_length.max(0) as usize));
            }
        }
    }

    #[test]
    fn statements_keys_and_signatures_are_total(
        a in arb_text(), b in arb_text(), c in arb_text(), d in arb_text(),
        id in any::<i64>(), idx in any::<i32>(),
    ) {
        let f = contracts::StatementFields {
            contract_id: id,
            contract_number: &a,
            tenant: &b,
            hash_alg: &c,
            contract_hash: &d,
            signer_index: idx,
            signer_user_id: id,
            signer_username: &a,
            public_key: &b,
        };
        if let Some(s) = contracts::signature_statement(&f) {
            prop_assert_eq!(s.lines().count(), 10);
            prop_assert!(s.starts_with("anchord-contract-signature/v1\n"));
            prop_assert!(s.ends_with('\n'));
        }
        if let Some(s) = contracts::registration_statement(id, &a, &b, &c) {
            prop_assert_eq!(s.lines().count(), 5);
        }
        let _ = contracts::hex_bytes::<32>(&a);
        let _ = contracts::hex_bytes::<64>(&d);
        if let Some(k) = contracts::parse_public_key(&a) {
            prop_assert!(!contracts::verify_hex(&k, &b, &c) || c.len() == 128);
        }
        let req = contracts::SigningKeyRequest {
            custody: "client".into(),
            public_key: Some(a.clone()),
            challenge: Some(c.clone()),
            proof: Some(d.clone()),
        };
        prop_assert!(contracts::check_client_key(id, &b, &req).is_err());
    }

    #[test]
    fn every_body_type_parses_or_refuses_and_validates_without_panic(v in arb_body()) {
        use anchord_workflow::{auth, judicial, preservations, webhooks};
        fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
            serde_json::from_value(v.clone()).ok()
        }
        if let Some(t) = parse::<contracts::NewContractType>(&v) {
            let _ = contracts::check_contract_type(&t);
            let _ = contracts::render(&t.template_text, &BTreeMap::new(), contracts::MAX_BODY_BYTES);
        }
        if let Some(n) = parse::<contracts::NewContract>(&v) {
            let mut errs = BTreeMap::new();
            contracts::check_new_contract(&n, &mut errs);
            let _ = contracts::render("{{a}} {{b}}", &n.variables, contracts::MAX_BODY_BYTES);
            let _ = contracts::render(&n.title, &n.variables, 1000);
        }
        if let Some(k) = parse::<contracts::SigningKeyRequest>(&v) {
            let _ = contracts::check_client_key(1, "u", &k);
        }
        if let Some(s) = parse::<contracts::SignRequest>(&v) {
            let _ = s.signature.as_deref().and_then(contracts::hex_bytes::<64>);
        }
        if let Some(p) = parse::<products::NewProduct>(&v) {
            let mut errs = BTreeMap::new();
            products::check_channels(&p.channels, &mut errs);
            products::check_description(&p.description, &mut errs);
            for f in &p.fields {
                products::check_field(f, "", &mut errs);
            }
            let _ = products::validate_values(&p.fields, &serde_json::Map::new());
        }
        if let Some(p) = parse::<products::ProductPatch>(&v) {
            let mut errs = BTreeMap::new();
            products::check_channels(p.channels.as_deref().unwrap_or_default(), &mut errs);
            products::check_description(p.description.as_deref().unwrap_or_default(), &mut errs);
        }
        if let Some(f) = parse::<products::NewField>(&v) {
            products::check_field(&f.field, "", &mut BTreeMap::new());
        }
        let _ = parse::<products::FieldPatch>(&v);
        let _ = parse::<products::FieldOrder>(&v);
        let template = vec![
            Field { key: "id_no".into(), display_name: "身份证".into(), field_type: "id_number".into(), max_length: 18, required: true, disclose_on_certificate: false },
            Field { key: "name".into(), display_name: "name".into(), field_type: "text".into(), max_length: 20, required: false, disclose_on_certificate: false },
            Field { key: "amount".into(), display_name: "amount".into(), field_type: "number".into(), max_length: 12, required: false, disclose_on_certificate: false },
            Field { key: "due".into(), display_name: "due".into(), field_type: "date".into(), max_length: 10, required: false, disclose_on_certificate: false },
            Field { key: "mail".into(), display_name: "mail".into(), field_type: "email".into(), max_length: 50, required: false, disclose_on_certificate: false },
            Field { key: "phone".into(), display_name: "phone".into(), field_type: "phone".into(), max_length: 30, required: false, disclose_on_certificate: false },
        ];
        if let Some(p) = parse::<preservations::NewPreservation>(&v) {
            let _ = products::validate_values(&template, &p.fields);
        }
        if let Some(p) = parse::<preservations::EditPreservation>(&v) {
            let _ = products::validate_values(&template, &p.fields);
        }
        if let Value::Object(m) = &v {
            let _ = products::validate_values(&template, m);
        }
        if let Some(r) = parse::<preservations::Reason>(&v) {
            let _ = r.checked();
        }
        if let Some(n) = parse::<judicial::NewRequest>(&v) {
            let _ = judicial::check_new_request(&n, &mut BTreeMap::new());
        }
        let _ = parse::<auth::LoginRequest>(&v);
        let _ = parse::<auth::NewUser>(&v);
        let _ = parse::<webhooks::NewWebhook>(&v);
    }
}

// --- over HTTP ------------------------------------------------------------

/// A deterministic stream of values of `s`.
fn samples<S: Strategy>(s: S, n: usize, seed: u8) -> Vec<S::Value> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    );
    (0..n)
        .map(|_| s.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// Raw bodies that are not (valid) JSON, or too much of it; the last one is
/// a well-formed upload with a non-UTF-8 file name (hostile, not invalid).
fn raw_garbage() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    vec![
        ("application/json", b"".to_vec()),
        ("application/json", b"{".to_vec()),
        ("application/json", b"not json at all".to_vec()),
        ("application/json", vec![0xff, 0xfe, b'{', 0x80, b'}']),
        ("application/json", b"{\"name\": \"\xc3\x28\"}".to_vec()),
        ("application/json", b"1e999999".to_vec()),
        ("application/json", b"-0".to_vec()),
        // An array where an object belongs: serde reads structs from arrays
        // of their fields, so `[]` once set nothing and answered 200.
        ("application/json", b" []".to_vec()),
        ("application/json", deep.into_bytes()),
        ("application/json", deep_obj.into_bytes()),
        (
            "application/json",
            format!("{{\"name\": \"{}\"}}", "é".repeat(600_000)).into_bytes(),
        ),
        ("application/json", b"{\"a\":1,\"a\":2}".to_vec()),
        ("text/plain", b"{}".to_vec()),
        ("multipart/form-data; boundary=X", b"--X\r\ngarbage".to_vec()),
        (
            "multipart/form-data; boundary=X",
            b"--X\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nabc\r\n--X--\r\n".to_vec(),
        ),
        (
            "multipart/form-data; boundary=X",
            b"--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\xff\xfe\"\r\n\r\nabc\r\n--X--\r\n"
                .to_vec(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_answers_garbage_without_a_server_error() {
    let e = common::start(true, |c| {
        c.login_per_ip_per_min = 0;
        c.login_per_account_per_min = 0;
        c.writes_per_user_per_min = 0;
        c.writes_per_ip_per_min = 0;
        c.anonymous_per_ip_per_min = 0;
    })
    .await;
    // A server may close a connection after answering a request whose body
    // it did not read (an early 4xx); a pooled client that reuses it races
    // that close and reports "error sending request". Each garbage request
    // gets its own connection, so a missing answer is the server's fault.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let admin = e.admin().await;
    e.ok(
        201,
        "POST",
        "/v1/institutions",
        Some(&admin),
        Some(json!({"id": "notary-1", "name": "notary", "kind": "notary", "fee_cents": 100})),
    )
    .await;
    let a = json!({"tenant": "bank-a"});
    // (username, password, token): every role.
    let mut users: Vec<(&str, String, String)> = vec![(
        common::ADMIN,
        common::ADMIN_PASSWORD.to_owned(),
        admin.clone(),
    )];
    for (name, role, extra) in [
        ("alice", "user", a.clone()),
        ("rita", "reviewer", a.clone()),
        ("nora", "institution", json!({"institution_id": "notary-1"})),
    ] {
        let t = e.user(&admin, name, role, extra).await;
        users.push((name, format!("{name}-password"), t));
    }
    let victim = e
        .ok(
            201,
            "POST",
            "/v1/users",
            Some(&admin),
            Some(json!({"username": "victim", "password": "victim-password-77!", "role": "user", "tenant": "bank-a"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (alice, rita) = (users[1].2.clone(), users[2].2.clone());
    // Records for every kind of path parameter.
    let product = e.product(&admin).await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "100"}})),
        )
        .await;
    let pid = p["id"].as_i64().unwrap();
    let pp = format!("/v1/preservations/{pid}");
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "f",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    e.ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    e.wait_until("the preservation on chain", &pp, &alice, 90, |v| {
        v["status"] == "on_chain"
    })
    .await;
    // A second preservation that stays editable.
    let p2 = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "李四", "amount": "1"}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let tid = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "I, {{name}}, agree."})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let kid = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "t", "variables": {"name": "a"},
                        "signers": ["alice"]}),
            ),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let jid = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(
                json!({"kind": "notarization", "subject_kind": "preservation",
                        "subject_id": pid, "institution_id": "notary-1"}),
            ),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // A webhook of bank-a, written directly (its URL need not resolve: it
    // is never delivered to here).
    let wid: i64 = e
        .ledger
        .workflow_pool()
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO workflow.webhooks (tenant, url, secret, created_by)
             SELECT 'bank-a', 'https://hooks.example.com/anchord', 'secret', id
               FROM workflow.users WHERE username = 'rita' RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // An organisation of its own for the organisation routes: disabling
    // bank-a's (id 1) would end every session of the users above.
    let oid = e
        .ok(
            201,
            "POST",
            "/v1/organisations",
            Some(&admin),
            Some(json!({"kind": "enterprise", "name": "fuzz target", "tenant": "fuzz-org"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();

    let doc = e.ok(200, "GET", "/v1/openapi.json", None, None).await;
    let schemas = doc["components"]["schemas"].clone();
    let fill = |path: &str| -> String {
        let id = if path.starts_with("/v1/products/") {
            product
        } else if path.starts_with("/v1/preservations/") {
            if path.ends_with("/approve") || path.ends_with("/reject") {
                pid
            } else {
                p2
            }
        } else if path.starts_with("/v1/contracts/") {
            kid
        } else if path.starts_with("/v1/contract-types/") {
            tid
        } else if path.starts_with("/v1/judicial-requests/") {
            jid
        } else if path.starts_with("/v1/webhooks/") {
            wid
        } else if path.starts_with("/v1/users/") {
            victim
        } else if path.starts_with("/v1/organisations/") {
            oid
        } else {
            1
        };
        path.replace("{id}", &id.to_string())
            .replace("{key}", "borrower")
            .replace(['{', '}'], "")
    };
    // (method, path, the JSON body's keys, takes a body)
    let mut ops: Vec<(String, String, Vec<String>, bool)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            // The body's documented keys, for JSON of the right shape.
            let keys: Vec<String> =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .and_then(|r| r.rsplit('/').next())
                    .and_then(|name| schemas[name]["properties"].as_object())
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
            let has_body = op.get("requestBody").is_some();
            ops.push((method.to_uppercase(), path.clone(), keys, has_body));
        }
    }
    assert!(ops.len() >= 30, "{} write operations", ops.len());
    // Deletions last: they take no body and would remove the records the
    // other routes validate against.
    ops.sort_by_key(|(method, ..)| method == "DELETE");
    let generated = samples(arb_body(), 24, 7);
    let mut sent = 0usize;
    let mut answers: BTreeMap<u16, usize> = BTreeMap::new();
    let garbage = raw_garbage().len();
    for (i, (method, path, keys, has_body)) in ops.iter().enumerate() {
        if path == "/v1/auth/logout" {
            continue; // answers 2xx to anything and ends the session
        }
        let url = format!("{}{}", e.base, fill(path));
        // JSON of the route's own shape with hostile values.
        let mut bodies: Vec<(&str, Vec<u8>)> = raw_garbage();
        for v in &generated {
            bodies.push(("application/json", serde_json::to_vec(v).unwrap()));
        }
        for vals in samples(
            prop::collection::vec(arb_json(), keys.len()..=keys.len()),
            12,
            i as u8,
        ) {
            let obj: serde_json::Map<String, Value> = keys.iter().cloned().zip(vals).collect();
            bodies.push(("application/json", serde_json::to_vec(&obj).unwrap()));
        }
        let tokens: Vec<String> = users.iter().map(|(_, _, t)| t.clone()).collect();
        for token in &tokens {
            for (n, (ctype, body)) in bodies.iter().enumerate() {
                let resp = http
                    .request(method.parse().unwrap(), &url)
                    .bearer_auth(token)
                    .header("content-type", *ctype)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap_or_else(|err| {
                        panic!(
                            "{method} {path}: no answer to {} bytes of {ctype} ({err})",
                            body.len()
                        )
                    });
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                assert!(
                    status < 500,
                    "{method} {path} answered {status} to {:?}: {text}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
                // A route that takes a body refuses garbage (all but the
                // well-formed upload, the last raw one) with a 4xx.
                if *has_body && n + 1 < garbage {
                    assert!(
                        (400..500).contains(&status),
                        "{method} {path} answered {status} to garbage {:?}: {text}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    );
                }
                sent += 1;
                *answers.entry(status).or_default() += 1;
            }
        }
        // Sessions may have been revoked or users disabled by a route that
        // takes no body: sign in again where needed.
        for (name, password, token) in users.iter_mut() {
            let (s, _) = e.call("GET", "/v1/me", Some(token), None).await;
            if s.as_u16() == 401 {
                *token = e.login(name, password).await;
            }
        }
    }
    eprintln!("{sent} garbage requests: {answers:?}");
    // Still alive, and the audit chain still verifies.
    let admin = e.admin().await;
    let v = e
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
}
