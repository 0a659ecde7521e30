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
use crate::{Workflow, ts};

pub const FIELD_TYPES: &[&str] = &["text", "number", "date", "email", "phone", "id_number"];
pub const CHANNELS: &[&str] = &["notarization", "judicial_ruling"];

/// One field of a template.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Machine key, `[a-z][a-z0-9_]*`, unique in the product.
    pub key: String,
    pub display_name: String,
    /// `text`, `number`, `date` (YYYY-MM-DD), `email`, `phone`, `id_number`.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Maximum length in characters.
    pub max_length: i32,
    pub required: bool,
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
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldOrder {
    /// Every field key, in the new order.
    pub keys: Vec<String>,
}

/// Is `k` a field key: `[a-z][a-z0-9_]*`, at most 64 characters (checked
/// by characters: any input, never a panic).
pub fn valid_key(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && k.chars().count() <= 64
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Check a field definition: field-level messages into `errs`, each key
/// prefixed with `prefix`.
pub fn check_field(f: &Field, prefix: &str, errs: &mut BTreeMap<String, String>) {
    let key_ok = valid_key(&f.key);
    if !key_ok {
        errs.insert(format!("{prefix}key"), "[a-z][a-z0-9_]*, at most 64".into());
    }
    if f.display_name.is_empty() || f.display_name.chars().count() > 200 {
        errs.insert(format!("{prefix}display_name"), "1-200 characters".into());
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
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        errs.insert(
            "description".into(),
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
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
    let p = c
        .query_opt(
            "SELECT 1 FROM workflow.products WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?;
    if p.is_none() {
        return Ok(None);
    }
    let rows = c
        .query(
            "SELECT key, display_name, field_type, max_length, required
               FROM workflow.product_fields WHERE product_id = $1 ORDER BY position",
            &[&id],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| Field {
                key: r.get(0),
                display_name: r.get(1),
                field_type: r.get(2),
                max_length: r.get(3),
                required: r.get(4),
            })
            .collect(),
    ))
}

async fn load(c: &tokio_postgres::Client, id: i64) -> Result<ProductJson, ApiError> {
    let r = c
        .query_opt(
            "SELECT id, name, description, channels, created_at FROM workflow.products
              WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    let fields = template(c, id).await?.unwrap_or_default();
    Ok(ProductJson {
        id: r.get(0),
        name: r.get(1),
        description: r.get(2),
        channels: r.get(3),
        fields,
        created_at: ts(r.get(4)),
    })
}

/// Create a product with its template (administrators).
#[utoipa::path(post, path = "/v1/products", request_body = NewProduct, responses(
    (status = 201, body = ProductJson),
    (status = 403, body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Json(p): Json<NewProduct>,
) -> Result<(StatusCode, axum::Json<ProductJson>), ApiError> {
    let mut errs = BTreeMap::new();
    if p.name.trim().is_empty() || p.name.chars().count() > 200 {
        errs.insert("name".into(), "1-200 characters".into());
    }
    check_channels(&p.channels, &mut errs);
    check_description(&p.description, &mut errs);
    for (i, f) in p.fields.iter().enumerate() {
        check_field(f, &format!("fields[{i}]."), &mut errs);
        if p.fields.iter().take(i).any(|g| g.key == f.key) {
            errs.insert(format!("fields[{i}].key"), "duplicate key".into());
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO workflow.products (name, description, channels) VALUES ($1, $2, $3) RETURNING id",
            &[&p.name.trim(), &p.description, &p.channels],
        )
        .await?
        .get(0);
    for (i, f) in p.fields.iter().enumerate() {
        insert_field(&tx, id, i as i32, f).await?;
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(load(&c, id).await?)))
}

async fn insert_field(
    tx: &tokio_postgres::Transaction<'_>,
    product: i64,
    pos: i32,
    f: &Field,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO workflow.product_fields (product_id, key, position, display_name, field_type, max_length, required)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&product, &f.key, &pos, &f.display_name, &f.field_type, &f.max_length, &f.required],
    )
    .await?;
    Ok(())
}

/// List live products.
#[utoipa::path(get, path = "/v1/products", responses((status = 200, body = [ProductJson])))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    _caller: Caller,
) -> Result<axum::Json<Vec<ProductJson>>, ApiError> {
    let c = wf.db().await?;
    let ids: Vec<i64> = c
        .query(
            "SELECT id FROM workflow.products WHERE deleted_at IS NULL ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(load(&c, id).await?);
    }
    Ok(axum::Json(out))
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
        && (n.trim().is_empty() || n.chars().count() > 200)
    {
        errs.insert("name".into(), "1-200 characters".into());
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
    let n = c
        .execute(
            "UPDATE workflow.products SET name = coalesce($2, name), description = coalesce($3, description),
                    channels = coalesce($4, channels)
              WHERE id = $1 AND deleted_at IS NULL",
            &[&id, &p.name, &p.description, &p.channels],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("product"));
    }
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
    let n = c
        .execute(
            "UPDATE workflow.products SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("product"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn lock_product(
    tx: &tokio_postgres::Transaction<'_>,
    id: i64,
) -> Result<Vec<String>, ApiError> {
    let p = tx
        .query_opt(
            "SELECT 1 FROM workflow.products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&id],
        )
        .await?;
    if p.is_none() {
        return Err(ApiError::not_found("product"));
    }
    Ok(tx
        .query(
            "SELECT key FROM workflow.product_fields WHERE product_id = $1 ORDER BY position",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

async fn renumber(
    tx: &tokio_postgres::Transaction<'_>,
    id: i64,
    keys: &[String],
) -> Result<(), ApiError> {
    for (i, k) in keys.iter().enumerate() {
        tx.execute(
            "UPDATE workflow.product_fields SET position = $3 WHERE product_id = $1 AND key = $2",
            &[&id, k, &(i as i32)],
        )
        .await?;
    }
    Ok(())
}

/// Add a field (administrators).
#[utoipa::path(post, path = "/v1/products/{id}/fields", params(("id" = i64, Path)), request_body = NewField,
    responses((status = 201, body = ProductJson), (status = 409, body = crate::error::ErrorBody),
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
    let mut keys = lock_product(&tx, id).await?;
    if keys.contains(&nf.field.key) {
        return Err(ApiError::conflict("the product has a field with this key"));
    }
    let pos = nf
        .position
        .map_or(keys.len(), |p| (p.max(0) as usize).min(keys.len()));
    insert_field(&tx, id, keys.len() as i32 + 10_000, &nf.field).await?;
    keys.insert(pos, nf.field.key.clone());
    renumber(&tx, id, &keys).await?;
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
    };
    let mut errs = BTreeMap::new();
    check_field(&new, "", &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    c.execute(
        "UPDATE workflow.product_fields SET display_name = $3, field_type = $4, max_length = $5, required = $6
          WHERE product_id = $1 AND key = $2",
        &[&id, &key, &new.display_name, &new.field_type, &new.max_length, &new.required],
    )
    .await?;
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
    let mut keys = lock_product(&tx, id).await?;
    if !keys.contains(&key) {
        return Err(ApiError::not_found("field"));
    }
    tx.execute(
        "DELETE FROM workflow.product_fields WHERE product_id = $1 AND key = $2",
        &[&id, &key],
    )
    .await?;
    keys.retain(|k| *k != key);
    renumber(&tx, id, &keys).await?;
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
    let keys = lock_product(&tx, id).await?;
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
    renumber(&tx, id, &o.keys).await?;
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
