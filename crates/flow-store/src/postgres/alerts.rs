//! Alert rules and alerts in PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::error::ErrorKind;
use uuid::Uuid;

use super::PgStore;
use crate::StoreError;
use crate::alerts::{Alert, AlertQuery, AlertRule, NewAlert, NewAlertRule};
use crate::codec::{CodecError, json_text, now, parse_json};
use crate::error::violates;

const RULE_COLUMNS: &str = "id, name, condition, webhook_url, created_at";
const ALERT_COLUMNS: &str =
    "id, rule_id, rule_name, subject, message, value, fired_at, resolved_at, resolution";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    name: String,
    condition: String,
    webhook_url: Option<String>,
    created_at: DateTime<Utc>,
}

impl RuleRow {
    fn into_rule(self) -> Result<AlertRule, CodecError> {
        Ok(AlertRule {
            id: self.id,
            name: self.name,
            condition: parse_json("alert_rules.condition", &self.condition)?,
            webhook_url: self.webhook_url,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: Uuid,
    rule_id: Uuid,
    rule_name: String,
    subject: String,
    message: String,
    value: Option<f64>,
    fired_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    resolution: Option<String>,
}

impl From<AlertRow> for Alert {
    fn from(r: AlertRow) -> Self {
        Alert {
            id: r.id,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            subject: r.subject,
            message: r.message,
            value: r.value,
            fired_at: r.fired_at,
            resolved_at: r.resolved_at,
            resolution: r.resolution,
        }
    }
}

impl PgStore {
    pub(crate) async fn create_alert_rule(&self, new: &NewAlertRule) -> Result<AlertRule, StoreError> {
        let rule = AlertRule {
            id: Uuid::now_v7(),
            name: new.name.clone(),
            condition: new.condition.clone(),
            webhook_url: new.webhook_url.clone(),
            created_at: now(),
        };
        sqlx::query(&format!("INSERT INTO alert_rules ({RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"))
            .bind(rule.id)
            .bind(&rule.name)
            .bind(self.located(json_text("alert condition", &rule.condition))?)
            .bind(&rule.webhook_url)
            .bind(rule.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if violates(&e, ErrorKind::UniqueViolation) {
                    StoreError::NameTaken {
                        database: self.name.to_string(),
                        what: "alert rule",
                        name: new.name.clone(),
                    }
                } else {
                    self.query_error(e)
                }
            })?;
        Ok(rule)
    }

    pub(crate) async fn list_alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        // Byte order, as SQLite sorts.
        let rows: Vec<RuleRow> =
            sqlx::query_as(&format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY name COLLATE \"C\""))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_rule())).collect()
    }

    pub(crate) async fn delete_alert_rule(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(e))?;
        sqlx::query(
            "UPDATE alerts SET resolved_at = $1, resolution = 'its rule was deleted' \
             WHERE rule_id = $2 AND resolved_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(e))?;
        tx.commit().await.map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn open_alert(&self, new: &NewAlert) -> Result<Option<Alert>, StoreError> {
        let row: Option<AlertRow> = sqlx::query_as(&format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL) \
             ON CONFLICT DO NOTHING RETURNING {ALERT_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(new.rule_id)
        .bind(&new.rule_name)
        .bind(&new.subject)
        .bind(&new.message)
        .bind(new.value)
        .bind(now())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(row.map(Alert::from))
    }

    pub(crate) async fn resolve_alert(
        &self,
        rule_id: Uuid,
        subject: &str,
        resolution: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let row: Option<AlertRow> = sqlx::query_as(&format!(
            "UPDATE alerts SET resolved_at = $1, resolution = $2 \
             WHERE rule_id = $3 AND subject = $4 AND resolved_at IS NULL RETURNING {ALERT_COLUMNS}"
        ))
        .bind(now())
        .bind(resolution)
        .bind(rule_id)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        Ok(row.map(Alert::from))
    }

    pub(crate) async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let filter = if query.firing { "WHERE resolved_at IS NULL" } else { "" };
        let rows: Vec<AlertRow> =
            sqlx::query_as(&format!("SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY id DESC LIMIT $1"))
                .bind(query.limit())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        Ok(rows.into_iter().map(Alert::from).collect())
    }
}
