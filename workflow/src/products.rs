//! Products: preservation service types with their channels and an ordered
//! field template (administrators define them; everyone signed in reads).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authz::{Caller, Require, roles};
use crate::error::{ApiError, Json, Path};
use crate::store::products as store;
use crate::{Workflow, ts};

pub const FIELD_TYPES: &[&str] = &["text", "number", "date", "email", "phone", "id_number"];
pub const CHANNELS: &[&str] = &["notarization", "judicial_ruling"];

/// One field of a template.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Machine key in the seed's styles (`projName`, `ID_no`, `borrower`):
    /// `[A-Za-z][A-Za-z0-9_]*`, at most 64 characters. Unique in the product
    /// up to case and `_` (`idNo`, `id_no` and `ID_NO` are one key: 409).
    pub key: String,
    pub display_name: String,
    /// `text`, `number`, `date` (YYYY-MM-DD), `email`, `phone`, `id_number`.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Maximum length in characters.
    pub max_length: i32,
    pub required: bool,
    /// Whether the value is printed on the preservation certificate
    /// (default false: nothing is disclosed unless the bank says so).
    #[serde(default)]
    pub disclose_on_certificate: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `notarization`, `judicial_ruling`.
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub fields: Vec<Field>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub channels: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductJson {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub channels: Vec<String>,
    /// In display order.
    pub fields: Vec<Field>,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewField {
    #[serde(flatten)]
    pub field: Field,
    /// 0-based position; appended when absent.
    pub position: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldPatch {
    pub display_name: Option<String>,
    #[serde(rename = "type")]
    pub field_type: Option<String>,
    pub max_length: Option<i32>,
    pub required: Option<bool>,
    pub disclose_on_certificate: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldOrder {
    /// Every field key, in the new order.
    pub keys: Vec<String>,
}

/// The most fields a product's template has.
pub const MAX_FIELDS: usize = 200;

/// Is `k` a field key: `[A-Za-z][A-Za-z0-9_]*`, at most 64 characters, in
/// the seed platform's styles (`projName`, `ID_no`, `card_no2`); checked by
/// characters: any input, never a panic.
pub fn valid_key(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars().count() <= 64
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What makes two keys the same key within a product: case and `_`
/// ignored (`idNo`, `id_no`, `ID_NO` and `idno` are one). The schema's
/// unique index `product_fields_key_normalized` computes the same
/// (`lower(replace(key, '_', ''))`).
pub fn normalized_key(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A name or label: 1-200 characters, none of them a control character
/// (PostgreSQL text holds no NUL; a label is one line).
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.chars().count() <= 200 && !n.chars().any(crate::text::unfit_in_name)
}

/// Check a field definition: field-level messages into `errs`, each key
/// prefixed with `prefix`.
pub fn check_field(f: &Field, prefix: &str, errs: &mut BTreeMap<String, String>) {
    let key_ok = valid_key(&f.key);
    if !key_ok {
        errs.insert(
            format!("{prefix}key"),
            "a letter, then letters, digits or `_` ([A-Za-z][A-Za-z0-9_]*), at most 64 characters"
                .into(),
        );
    }
    if !valid_name(&f.display_name) {
        errs.insert(
            format!("{prefix}display_name"),
            "1-200 characters, no control characters".into(),
        );
    }
    if !FIELD_TYPES.contains(&f.field_type.as_str()) {
        errs.insert(
            format!("{prefix}type"),
            format!("one of {}", FIELD_TYPES.join(", ")),
        );
    }
    if !(1..=4096).contains(&f.max_length) {
        errs.insert(format!("{prefix}max_length"), "1 to 4096".into());
    }
}

/// Check channels: each one of [`CHANNELS`].
pub fn check_channels(ch: &[String], errs: &mut BTreeMap<String, String>) {
    if ch.iter().any(|c| !CHANNELS.contains(&c.as_str())) {
        errs.insert(
            "channels".into(),
            format!("each one of {}", CHANNELS.join(", ")),
        );
    }
}

/// The longest product description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// Check a product description: at most [`MAX_DESCRIPTION_CHARS`].
pub fn check_description(d: &str, errs: &mut BTreeMap<String, String>) {
    if d.chars().count() > MAX_DESCRIPTION_CHARS || d.contains('\0') {
        errs.insert(
            "description".into(),
            format!("at most {MAX_DESCRIPTION_CHARS} characters, no NUL"),
        );
    }
}

/// Validate submitted values against a template: field-level messages.
pub fn validate_values(
    template: &[Field],
    values: &serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, BTreeMap<String, String>> {
    let mut errs = BTreeMap::new();
    let mut out = BTreeMap::new();
    for k in values.keys() {
        if !template.iter().any(|f| &f.key == k) {
            errs.insert(k.clone(), "not a field of this product".into());
        }
    }
    for f in template {
        let v = match values.get(&f.key) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.trim().to_owned(),
            Some(serde_json::Value::Number(n)) if f.field_type == "number" => n.to_string(),
            Some(_) => {
                errs.insert(
                    f.key.clone(),
                    format!("{}: must be a string", f.display_name),
                );
                continue;
            }
        };
        if v.is_empty() {
            if f.required {
                errs.insert(f.key.clone(), format!("{} is required", f.display_name));
            }
            continue;
        }
        if v.contains('\0') {
            errs.insert(
                f.key.clone(),
                format!("{}: must not contain NUL characters", f.display_name),
            );
            continue;
        }
        let len = v.chars().count();
        if len > f.max_length as usize {
            errs.insert(
                f.key.clone(),
                format!(
                    "{} is {len} characters long; the maximum is {}",
                    f.display_name, f.max_length
                ),
            );
            continue;
        }
        if let Err(m) = check_type(&f.field_type, &v) {
            errs.insert(f.key.clone(), format!("{}: {m}", f.display_name));
            continue;
        }
        out.insert(f.key.clone(), v);
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Check a value of field type `t` (already trimmed and within the
/// field's length), by characters: any input, never a panic.
pub fn check_type(t: &str, v: &str) -> Result<(), &'static str> {
    let ok = match t {
        "number" => v.parse::<f64>().is_ok_and(f64::is_finite),
        "date" => {
            time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
        }
        "email" => {
            v.split_once('@').is_some_and(|(a, b)| {
                !a.is_empty() && b.contains('.') && !b.starts_with('.') && !b.ends_with('.')
            }) && !v.contains(char::is_whitespace)
        }
        "phone" => {
            let digits = v.trim_start_matches('+');
            (5..=20).contains(&digits.chars().count())
                && digits
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == ' ')
        }
        "id_number" => valid_id_number(v),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(match t {
            "number" => "must be a number",
            "date" => "must be a date YYYY-MM-DD",
            "email" => "must be an e-mail address",
            "phone" => "must be a phone number",
            "id_number" => "must be an 18-character resident ID number",
            _ => "invalid",
        })
    }
}

/// A resident ID number (GB 11643): 17 digits and a check character (a
/// digit or `X`, either case), counted and checked by characters, so any
/// input (multi-byte characters included) is simply invalid.
pub fn valid_id_number(v: &str) -> bool {
    v.chars().count() == 18
        && v.chars().take(17).all(|c| c.is_ascii_digit())
        && v.chars()
            .nth(17)
            .is_some_and(|c| c.is_ascii_digit() || c == 'x' || c == 'X')
}

/// The template of a live product (`None`: no such product).
pub async fn template(c: &tokio_postgres::Client, id: i64) -> Result<Option<Vec<Field>>, ApiError> {
    Ok(store::template(c, id)
        .await?
        .map(|t| t.into_iter().map(Field::from).collect()))
}

impl From<store::FieldRow> for Field {
    fn from(r: store::FieldRow) -> Self {
        Field {
            key: r.key,
            display_name: r.display_name,
            field_type: r.field_type,
            max_length: r.max_length,
            required: r.required,
            disclose_on_certificate: r.disclose_on_certificate,
        }
    }
}

impl From<&Field> for store::FieldRow {
    fn from(f: &Field) -> Self {
        store::FieldRow {
            key: f.key.clone(),
            display_name: f.display_name.clone(),
            field_type: f.field_type.clone(),
            max_length: f.max_length,
            required: f.required,
            disclose_on_certificate: f.disclose_on_certificate,
        }
    }
}

impl From<store::Product> for ProductJson {
    fn from(p: store::Product) -> Self {
        ProductJson {
            id: p.id,
            name: p.name,
            description: p.description,
            channels: p.channels,
            fields: p.fields.into_iter().map(Field::from).collect(),
            created_at: ts(p.created_at),
        }
    }
}

async fn load(c: &tokio_postgres::Client, id: i64) -> Result<ProductJson, ApiError> {
    Ok(store::get(c, id).await?.into())
}

/// 409 when `key` collides with one of `keys` (same [`normalized_key`]).
fn no_collision<'a>(key: &str, mut keys: impl Iterator<Item = &'a String>) -> Result<(), ApiError> {
    let n = normalized_key(key);
    match keys.find(|k| normalized_key(k) == n) {
        Some(other) => Err(store::key_collision(key, other).into()),
        None => Ok(()),
    }
}

/// Create a product with its template (administrators).
#[utoipa::path(post, path = "/v1/products", request_body = NewProduct, responses(
    (status = 201, body = ProductJson),
    (status = 403, body = crate::error::ErrorBody),
    (status = 409, description = "two field keys differ only by case or `_`", body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(p): Json<NewProduct>,
) -> Result<(StatusCode, axum::Json<ProductJson>), ApiError> {
    let mut errs = BTreeMap::new();
    if p.name.trim().is_empty() || !valid_name(&p.name) {
        errs.insert(
            "name".into(),
            "1-200 characters, no control characters".into(),
        );
    }
    check_channels(&p.channels, &mut errs);
    check_description(&p.description, &mut errs);
    if p.fields.len() > MAX_FIELDS {
        errs.insert("fields".into(), format!("at most {MAX_FIELDS} fields"));
    }
    for (i, f) in p.fields.iter().enumerate() {
        check_field(f, &format!("fields[{i}]."), &mut errs);
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    for (i, f) in p.fields.iter().enumerate() {
        no_collision(&f.key, p.fields.iter().take(i).map(|g| &g.key))?;
    }
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let id = store::create(&tx, p.name.trim(), &p.description, &p.channels).await?;
    for (i, f) in p.fields.iter().enumerate() {
        store::insert_field(&tx, id, i as i32, &f.into()).await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(load(&c, id).await?)))
}

/// List live products.
#[utoipa::path(get, path = "/v1/products", responses((status = 200, body = [ProductJson])))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
) -> Result<axum::Json<Vec<ProductJson>>, ApiError> {
    let c = wf.db().await?;
    let all = store::list(c.client()).await?;
    Ok(axum::Json(all.into_iter().map(ProductJson::from).collect()))
}

/// One product.
#[utoipa::path(get, path = "/v1/products/{id}", params(("id" = i64, Path)), responses(
    (status = 200, body = ProductJson), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<ProductJson>, ApiError> {
    let c = wf.db().await?;
    Ok(axum::Json(load(&c, id).await?))
}

/// Edit name, description, channels (administrators).
#[utoipa::path(patch, path = "/v1/products/{id}", params(("id" = i64, Path)), request_body = ProductPatch,
    responses((status = 200, body = ProductJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn patch(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
    Json(p): Json<ProductPatch>,
) -> Result<axum::Json<ProductJson>, ApiError> {
    let mut errs = BTreeMap::new();
    if let Some(n) = &p.name
        && (n.trim().is_empty() || !valid_name(n))
    {
        errs.insert(
            "name".into(),
            "1-200 characters, no control characters".into(),
        );
    }
    if let Some(d) = &p.description {
        check_description(d, &mut errs);
    }
    if let Some(ch) = &p.channels {
        check_channels(ch, &mut errs);
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let c = wf.db().await?;
    store::patch(
        c.client(),
        id,
        p.name.as_deref().map(str::trim),
        p.description.as_deref(),
        p.channels.as_deref(),
    )
    .await?;
    Ok(axum::Json(load(&c, id).await?))
}

/// Delete a product (administrators). Existing preservations keep it.
#[utoipa::path(delete, path = "/v1/products/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let c = wf.db().await?;
    store::delete(c.client(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a field (administrators).
#[utoipa::path(post, path = "/v1/products/{id}/fields", params(("id" = i64, Path)), request_body = NewField,
    responses((status = 201, body = ProductJson),
              (status = 409, description = "the key collides with a field's key (same but for case or `_`)", body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn add_field(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
    Json(nf): Json<NewField>,
) -> Result<(StatusCode, axum::Json<ProductJson>), ApiError> {
    let mut errs = BTreeMap::new();
    check_field(&nf.field, "", &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let mut keys = store::lock(&tx, id).await?;
    no_collision(&nf.field.key, keys.iter())?;
    if keys.len() >= MAX_FIELDS {
        return Err(ApiError::field(
            "key",
            format!("a product has at most {MAX_FIELDS} fields"),
        ));
    }
    let pos = nf
        .position
        .map_or(keys.len(), |p| (p.max(0) as usize).min(keys.len()));
    store::insert_field(&tx, id, keys.len() as i32 + 10_000, &(&nf.field).into()).await?;
    keys.insert(pos, nf.field.key.clone());
    store::renumber(&tx, id, &keys).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(load(&c, id).await?)))
}

/// Edit a field (administrators).
#[utoipa::path(patch, path = "/v1/products/{id}/fields/{key}", params(("id" = i64, Path), ("key" = String, Path)),
    request_body = FieldPatch, responses((status = 200, body = ProductJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn edit_field(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path((id, key)): Path<(i64, String)>,
    Json(p): Json<FieldPatch>,
) -> Result<axum::Json<ProductJson>, ApiError> {
    let c = wf.db().await?;
    let Some(template) = template(&c, id).await? else {
        return Err(ApiError::not_found("product"));
    };
    let Some(cur) = template.iter().find(|f| f.key == key) else {
        return Err(ApiError::not_found("field"));
    };
    let new = Field {
        key: cur.key.clone(),
        display_name: p.display_name.unwrap_or_else(|| cur.display_name.clone()),
        field_type: p.field_type.unwrap_or_else(|| cur.field_type.clone()),
        max_length: p.max_length.unwrap_or(cur.max_length),
        required: p.required.unwrap_or(cur.required),
        disclose_on_certificate: p
            .disclose_on_certificate
            .unwrap_or(cur.disclose_on_certificate),
    };
    let mut errs = BTreeMap::new();
    check_field(&new, "", &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    store::update_field(c.client(), id, &(&new).into()).await?;
    Ok(axum::Json(load(&c, id).await?))
}

/// Delete a field (administrators).
#[utoipa::path(delete, path = "/v1/products/{id}/fields/{key}", params(("id" = i64, Path), ("key" = String, Path)),
    responses((status = 200, body = ProductJson), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_field(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path((id, key)): Path<(i64, String)>,
) -> Result<axum::Json<ProductJson>, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let mut keys = store::lock(&tx, id).await?;
    if !keys.contains(&key) {
        return Err(ApiError::not_found("field"));
    }
    store::delete_field(&tx, id, &key).await?;
    keys.retain(|k| *k != key);
    store::renumber(&tx, id, &keys).await?;
    tx.commit().await?;
    Ok(axum::Json(load(&c, id).await?))
}

/// Reorder the fields (administrators): `keys` must name every field once.
#[utoipa::path(put, path = "/v1/products/{id}/fields/order", params(("id" = i64, Path)), request_body = FieldOrder,
    responses((status = 200, body = ProductJson), (status = 422, body = crate::error::ErrorBody)))]
pub async fn reorder(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Path(id): Path<i64>,
    Json(o): Json<FieldOrder>,
) -> Result<axum::Json<ProductJson>, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let keys = store::lock(&tx, id).await?;
    let mut a = keys.clone();
    let mut b = o.keys.clone();
    a.sort();
    b.sort();
    if a != b {
        return Err(ApiError::field(
            "keys",
            "must list every field key exactly once",
        ));
    }
    store::renumber(&tx, id, &o.keys).await?;
    tx.commit().await?;
    Ok(axum::Json(load(&c, id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewField {
    pub position: usize,
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
    pub max_length: i32,
    /// The HTML input type a console renders.
    pub input: &'static str,
    /// What the server checks, in words.
    pub rule: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub product_id: i64,
    pub name: String,
    pub channels: Vec<String>,
    pub form: Vec<PreviewField>,
}

/// Preview the form users fill in.
#[utoipa::path(get, path = "/v1/products/{id}/preview", params(("id" = i64, Path)),
    responses((status = 200, body = Preview), (status = 404, body = crate::error::ErrorBody)))]
pub async fn preview(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<Preview>, ApiError> {
    let c = wf.db().await?;
    let p = load(&c, id).await?;
    let form = p
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| PreviewField {
            position: i,
            key: f.key.clone(),
            label: if f.required {
                format!("{} *", f.display_name)
            } else {
                f.display_name.clone()
            },
            field_type: f.field_type.clone(),
            required: f.required,
            max_length: f.max_length,
            input: match f.field_type.as_str() {
                "number" => "number",
                "date" => "date",
                "email" => "email",
                "phone" => "tel",
                _ => "text",
            },
            rule: format!(
                "{}{}, at most {} characters",
                if f.required { "required " } else { "optional " },
                f.field_type,
                f.max_length
            ),
        })
        .collect();
    Ok(axum::Json(Preview {
        product_id: p.id,
        name: p.name,
        channels: p.channels,
        form,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(key: &str, t: &str, max: i32, req: bool) -> Field {
        Field {
            key: key.into(),
            display_name: key.into(),
            field_type: t.into(),
            max_length: max,
            required: req,
            disclose_on_certificate: false,
        }
    }

    #[test]
    fn id_numbers_are_checked_by_characters() {
        assert!(valid_id_number("11010519491231002X"));
        assert!(valid_id_number("110105194912310021"));
        // 18 bytes, but a multi-byte character where the check digit goes,
        // or inside: invalid, never a panic.
        for bad in [
            "1101051949123100é",
            "é1101051949123100",
            "11010519491231002é",
            "一二三四五六",
            "11010519491231002",
            "",
            "1101051949123100212",
        ] {
            assert!(!valid_id_number(bad), "{bad}");
            assert!(check_type("id_number", bad).is_err(), "{bad}");
        }
        assert!(!valid_key("é"));
        assert!(!valid_key(""));
        assert!(valid_key("a_1"));
    }

    #[test]
    fn field_keys_take_the_seed_styles_and_collide_up_to_case_and_underscores() {
        for ok in [
            "projName", "ID_no", "id_no", "borrower", "card_no2", "a", "X9_y",
        ] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["1abc", "_id", "id-no", "id no", "名字", "", &"a".repeat(65)] {
            assert!(!valid_key(bad), "{bad}");
        }
        assert!(valid_key(&"a".repeat(64)));
        let n = normalized_key("idNo");
        for same in ["id_no", "ID_NO", "idno", "Id_No", "i_d_n_o"] {
            assert_eq!(normalized_key(same), n, "{same}");
        }
        assert_ne!(normalized_key("id_no2"), n);
    }

    #[test]
    fn values_are_checked_against_the_template() {
        let t = vec![
            f("name", "text", 5, true),
            f("amount", "number", 12, false),
            f("due", "date", 10, false),
            f("mail", "email", 50, false),
        ];
        let ok: serde_json::Map<_, _> = serde_json::from_str(
            r#"{"name":"Li","amount":12.5,"due":"2026-02-28","mail":"a@b.cn"}"#,
        )
        .expect("json");
        assert!(validate_values(&t, &ok).is_ok());
        let bad: serde_json::Map<_, _> = serde_json::from_str(
            r#"{"name":"toolong","amount":"x","due":"2026-02-30","mail":"nope","extra":"1"}"#,
        )
        .expect("json");
        let errs = validate_values(&t, &bad).expect_err("invalid");
        for k in ["name", "amount", "due", "mail", "extra"] {
            assert!(errs.contains_key(k), "{k}: {errs:?}");
        }
        let missing = serde_json::Map::new();
        let errs = validate_values(&t, &missing).expect_err("required");
        assert_eq!(errs.keys().collect::<Vec<_>>(), vec!["name"]);
    }
}
