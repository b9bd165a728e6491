//! Named connections kept in the store, next to the execution history.

use flow_model::{Connection, ConnectionKind};
use sqlx::Row;

use crate::codec::enum_text;
use crate::{Store, StoreError};

impl Store {
    /// Every named connection, by name.
    pub async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query("SELECT name, kind, url, options FROM connections ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        rows.iter()
            .map(|row| {
                let name: String = row.get("name");
                let kind: String = row.get("kind");
                let options: String = row.get("options");
                let corrupt = |column: &'static str, value: &str, reason: String| StoreError::Corrupt {
                    file: self.file.to_path_buf(),
                    column,
                    value: value.to_owned(),
                    reason: format!("connection `{name}`: {reason}"),
                };
                let kind: ConnectionKind = serde_json::from_value(serde_json::Value::String(kind.clone()))
                    .map_err(|e| corrupt("connections.kind", &kind, e.to_string()))?;
                let options = serde_json::from_str(&options)
                    .map_err(|e| corrupt("connections.options", &options, e.to_string()))?;
                Ok(Connection { name: name.clone(), kind, url: row.get("url"), options })
            })
            .collect()
    }

    /// Creates or replaces the connection of that name.
    pub async fn save_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let options = serde_json::Value::Object(connection.options.clone()).to_string();
        sqlx::query(
            "INSERT INTO connections (name, kind, url, options) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, options = excluded.options",
        )
        .bind(&connection.name)
        .bind(self.located(enum_text("connection kind", &connection.kind))?)
        .bind(&connection.url)
        .bind(options)
        .execute(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(())
    }

    /// Deletes a connection; false when there was none of that name.
    pub async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM connections WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }
}
