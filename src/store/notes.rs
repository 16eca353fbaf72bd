//! Notes supervisors write on a session: listed oldest first, edited and deleted by id, always
//! within the caller's tenant.

use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

use crate::clock::{from_unix_ms, unix_ms};
use crate::session::SessionId;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Note {
    #[schema(value_type = String)]
    pub id: uuid::Uuid,
    /// The name of the token that wrote it.
    pub author: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, author, text, created_at, updated_at";

impl Store {
    /// A session's notes, oldest first.
    pub async fn notes(&self, tenant: &str, session: SessionId) -> Result<Vec<Note>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM session_notes WHERE tenant = $1 AND session_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(tenant).bind(session.to_string()).fetch_all(&self.pool).await?;
        rows.iter().map(note_from_row).collect()
    }

    pub async fn add_note(&self, tenant: &str, session: SessionId, note: &Note) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO session_notes (session_id, tenant, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(session.to_string())
        .bind(tenant)
        .bind(note.id.to_string())
        .bind(&note.author)
        .bind(&note.text)
        .bind(unix_ms(note.created_at))
        .bind(unix_ms(note.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces a note's text; `None` if the session has no such note.
    pub async fn update_note(
        &self,
        tenant: &str,
        session: SessionId,
        id: uuid::Uuid,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Note>, StoreError> {
        let sql = format!(
            "UPDATE session_notes SET text = $4, updated_at = $5 WHERE tenant = $1 AND session_id = $2 AND id = $3 \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(tenant)
            .bind(session.to_string())
            .bind(id.to_string())
            .bind(text)
            .bind(unix_ms(at))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(note_from_row).transpose()
    }

    /// Deletes a note; whether there was one.
    pub async fn delete_note(&self, tenant: &str, session: SessionId, id: uuid::Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM session_notes WHERE tenant = $1 AND session_id = $2 AND id = $3")
            .bind(tenant)
            .bind(session.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn note_from_row(row: &AnyRow) -> Result<Note, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(Note {
        id: id.parse().map_err(|_| StoreError::Value(format!("note id {id:?}")))?,
        author: row.try_get("author")?,
        text: row.try_get("text")?,
        created_at: from_unix_ms(row.try_get("created_at")?),
        updated_at: from_unix_ms(row.try_get("updated_at")?),
    })
}
