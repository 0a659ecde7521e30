//! Products and their field templates: every SQL statement on
//! `workflow.products` and `workflow.product_fields`.

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

use super::StoreError;

/// One field of a template, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub key: String,
    pub display_name: String,
    pub field_type: String,
    pub max_length: i32,
    pub required: bool,
    pub disclose_on_certificate: bool,
}

/// A live product with its template in display order.
#[derive(Debug, Clone)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub channels: Vec<String>,
    pub fields: Vec<FieldRow>,
    pub created_at: time::OffsetDateTime,
}

const FIELD_COLUMNS: &str =
    "key, display_name, field_type, max_length, required, disclose_on_certificate";

fn field_row(r: &tokio_postgres::Row, at: usize) -> Result<FieldRow, StoreError> {
    Ok(FieldRow {
        key: r.try_get(at)?,
        display_name: r.try_get(at + 1)?,
        field_type: r.try_get(at + 2)?,
        max_length: r.try_get(at + 3)?,
        required: r.try_get(at + 4)?,
        disclose_on_certificate: r.try_get(at + 5)?,
    })
}

/// The template of a live product (`None`: no such product).
pub async fn template<C: GenericClient + Sync>(
    c: &C,
    id: i64,
) -> Result<Option<Vec<FieldRow>>, StoreError> {
    let live = c
        .query_opt(
            "SELECT 1 FROM workflow.products WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?;
    if live.is_none() {
        return Ok(None);
    }
    Ok(Some(fields_of(c, id).await?))
}

/// The fields of product `id` (deleted or not), in display order.
pub async fn fields_of<C: GenericClient + Sync>(
    c: &C,
    id: i64,
) -> Result<Vec<FieldRow>, StoreError> {
    c.query(
        &format!(
            "SELECT {FIELD_COLUMNS} FROM workflow.product_fields WHERE product_id = $1 ORDER BY position"
        ),
        &[&id],
    )
    .await?
    .iter()
    .map(|r| field_row(r, 0))
    .collect()
}

/// The live product `id`.
pub async fn get<C: GenericClient + Sync>(c: &C, id: i64) -> Result<Product, StoreError> {
    let r = c
        .query_opt(
            "SELECT id, name, description, channels, created_at FROM workflow.products
              WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("product"))?;
    Ok(Product {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        channels: r.try_get(3)?,
        fields: fields_of(c, id).await?,
        created_at: r.try_get(4)?,
    })
}

/// The name of product `id`, deleted or not (records keep their product).
pub async fn name_of<C: GenericClient + Sync>(c: &C, id: i64) -> Result<String, StoreError> {
    Ok(
        c.query_opt("SELECT name FROM workflow.products WHERE id = $1", &[&id])
            .await?
            .ok_or(StoreError::NotFound("product"))?
            .try_get(0)?,
    )
}

/// Every live product with its template, by id (two statements).
pub async fn list<C: GenericClient + Sync>(c: &C) -> Result<Vec<Product>, StoreError> {
    let mut out: Vec<Product> = c
        .query(
            "SELECT id, name, description, channels, created_at FROM workflow.products
              WHERE deleted_at IS NULL ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Product {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                description: r.try_get(2)?,
                channels: r.try_get(3)?,
                fields: Vec::new(),
                created_at: r.try_get(4)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let rows = c
        .query(
            &format!(
                "SELECT f.product_id, {} FROM workflow.product_fields f
                   JOIN workflow.products p ON p.id = f.product_id AND p.deleted_at IS NULL
                  ORDER BY f.product_id, f.position",
                FIELD_COLUMNS
                    .split(", ")
                    .map(|c| format!("f.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &[],
        )
        .await?;
    for r in &rows {
        let pid: i64 = r.try_get(0)?;
        if let Some(p) = out.iter_mut().find(|p| p.id == pid) {
            p.fields.push(field_row(r, 1)?);
        }
    }
    Ok(out)
}

/// A new product (without fields); returns its id.
pub async fn create(
    tx: &Transaction<'_>,
    name: &str,
    description: &str,
    channels: &[String],
) -> Result<i64, StoreError> {
    Ok(tx
        .query_one(
            "INSERT INTO workflow.products (name, description, channels) VALUES ($1, $2, $3) RETURNING id",
            &[&name, &description, &channels],
        )
        .await?
        .try_get(0)?)
}

/// The answer when a key collides with another of the product (the
/// normalized unique index, or the handler's own check).
pub fn key_collision(key: &str, other: &str) -> StoreError {
    StoreError::Conflict(format!(
        "field key {key:?} collides with the product's field {other:?}: keys that differ only by case or `_` are the same key"
    ))
}

/// A unique violation of the normalized key index, as the conflict it is.
fn collision(e: tokio_postgres::Error, key: &str) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!(
            "field key {key:?} collides with another field of the product: keys that differ only by case or `_` are the same key"
        ))
    } else {
        e.into()
    }
}

/// Insert a field at `position`.
pub async fn insert_field(
    tx: &Transaction<'_>,
    product: i64,
    position: i32,
    f: &FieldRow,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO workflow.product_fields
            (product_id, key, position, display_name, field_type, max_length, required, disclose_on_certificate)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &product,
            &f.key,
            &position,
            &f.display_name,
            &f.field_type,
            &f.max_length,
            &f.required,
            &f.disclose_on_certificate,
        ],
    )
    .await
    .map_err(|e| collision(e, &f.key))?;
    Ok(())
}

/// Change name, description, channels (each when given); `NotFound` for a
/// deleted or unknown product.
pub async fn patch<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    channels: Option<&[String]>,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE workflow.products SET name = coalesce($2, name), description = coalesce($3, description),
                    channels = coalesce($4, channels)
              WHERE id = $1 AND deleted_at IS NULL",
            &[&id, &name, &description, &channels],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("product"));
    }
    Ok(())
}

/// Delete (soft) a live product.
pub async fn delete<C: GenericClient + Sync>(c: &C, id: i64) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE workflow.products SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("product"));
    }
    Ok(())
}

/// Lock a live product for a template change; its field keys in order.
pub async fn lock(tx: &Transaction<'_>, id: i64) -> Result<Vec<String>, StoreError> {
    tx.query_opt(
        "SELECT 1 FROM workflow.products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        &[&id],
    )
    .await?
    .ok_or(StoreError::NotFound("product"))?;
    tx.query(
        "SELECT key FROM workflow.product_fields WHERE product_id = $1 ORDER BY position",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// Positions 0.. in the order of `keys` (the position constraint is
/// deferred to commit).
pub async fn renumber(tx: &Transaction<'_>, id: i64, keys: &[String]) -> Result<(), StoreError> {
    let positions: Vec<i32> = (0..keys.len() as i32).collect();
    tx.execute(
        "UPDATE workflow.product_fields f SET position = o.position
           FROM unnest($2::text[], $3::int4[]) AS o(key, position)
          WHERE f.product_id = $1 AND f.key = o.key",
        &[&id, &keys, &positions],
    )
    .await?;
    Ok(())
}

/// Replace a field's definition (its key stays).
pub async fn update_field<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    f: &FieldRow,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE workflow.product_fields
                SET display_name = $3, field_type = $4, max_length = $5, required = $6,
                    disclose_on_certificate = $7
              WHERE product_id = $1 AND key = $2",
            &[
                &id,
                &f.key,
                &f.display_name,
                &f.field_type,
                &f.max_length,
                &f.required,
                &f.disclose_on_certificate,
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("field"));
    }
    Ok(())
}

/// Remove a field of a locked product.
pub async fn delete_field(tx: &Transaction<'_>, id: i64, key: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM workflow.product_fields WHERE product_id = $1 AND key = $2",
        &[&id, &key],
    )
    .await?;
    Ok(())
}
