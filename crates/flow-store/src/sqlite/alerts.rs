//! Alert rules and alerts in SQLite.

use sqlx::error::ErrorKind;
use uuid::Uuid;

use super::SqliteStore;
use crate::StoreError;
use crate::alerts::{Alert, AlertQuery, AlertRule, NewAlert, NewAlertRule};
use crate::codec::{
    CodecError, json_text, now, parse_json, parse_optional_time, parse_time, parse_uuid, time_text,
};
use crate::error::violates;

const RULE_COLUMNS: &str = "id, name, condition, webhook_url, created_at";
const ALERT_COLUMNS: &str =
    "id, rule_id, rule_name, subject, message, value, fired_at, resolved_at, resolution";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: String,
    name: String,
    condition: String,
    webhook_url: Option<String>,
    created_at: String,
}

impl RuleRow {
    fn into_rule(self) -> Result<AlertRule, CodecError> {
        Ok(AlertRule {
            id: parse_uuid("alert_rules.id", &self.id)?,
            name: self.name,
            condition: parse_json("alert_rules.condition", &self.condition)?,
            webhook_url: self.webhook_url,
            created_at: parse_time("alert_rules.created_at", &self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: String,
    rule_id: String,
    rule_name: String,
    subject: String,
    message: String,
    value: Option<f64>,
    fired_at: String,
    resolved_at: Option<String>,
    resolution: Option<String>,
}

impl AlertRow {
    fn into_alert(self) -> Result<Alert, CodecError> {
        Ok(Alert {
            id: parse_uuid("alerts.id", &self.id)?,
            rule_id: parse_uuid("alerts.rule_id", &self.rule_id)?,
            rule_name: self.rule_name,
            subject: self.subject,
            message: self.message,
            value: self.value,
            fired_at: parse_time("alerts.fired_at", &self.fired_at)?,
            resolved_at: parse_optional_time("alerts.resolved_at", self.resolved_at.as_deref())?,
            resolution: self.resolution,
        })
    }
}

impl SqliteStore {
    pub(crate) async fn create_alert_rule(&self, new: &NewAlertRule) -> Result<AlertRule, StoreError> {
        let rule = AlertRule {
            id: Uuid::now_v7(),
            name: new.name.clone(),
            condition: new.condition.clone(),
            webhook_url: new.webhook_url.clone(),
            created_at: now(),
        };
        sqlx::query(&format!("INSERT INTO alert_rules ({RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?)"))
            .bind(rule.id.to_string())
            .bind(&rule.name)
            .bind(self.located(json_text("alert condition", &rule.condition))?)
            .bind(&rule.webhook_url)
            .bind(time_text(rule.created_at))
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
        let rows: Vec<RuleRow> =
            sqlx::query_as(&format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY name"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_rule())).collect()
    }

    pub(crate) async fn delete_alert_rule(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.query_error(e))?;
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(e))?;
        sqlx::query(
            "UPDATE alerts SET resolved_at = ?, resolution = 'its rule was deleted' \
             WHERE rule_id = ? AND resolved_at IS NULL",
        )
        .bind(time_text(now()))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.query_error(e))?;
        tx.commit().await.map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn open_alert(&self, new: &NewAlert) -> Result<Option<Alert>, StoreError> {
        let row: Option<AlertRow> = sqlx::query_as(&format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL) \
             ON CONFLICT DO NOTHING RETURNING {ALERT_COLUMNS}"
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(new.rule_id.to_string())
        .bind(&new.rule_name)
        .bind(&new.subject)
        .bind(&new.message)
        .bind(new.value)
        .bind(time_text(now()))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        row.map(|r| self.located(r.into_alert())).transpose()
    }

    pub(crate) async fn resolve_alert(
        &self,
        rule_id: Uuid,
        subject: &str,
        resolution: &str,
    ) -> Result<Option<Alert>, StoreError> {
        let row: Option<AlertRow> = sqlx::query_as(&format!(
            "UPDATE alerts SET resolved_at = ?, resolution = ? \
             WHERE rule_id = ? AND subject = ? AND resolved_at IS NULL RETURNING {ALERT_COLUMNS}"
        ))
        .bind(time_text(now()))
        .bind(resolution)
        .bind(rule_id.to_string())
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        row.map(|r| self.located(r.into_alert())).transpose()
    }

    pub(crate) async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let filter = if query.firing { "WHERE resolved_at IS NULL" } else { "" };
        let rows: Vec<AlertRow> =
            sqlx::query_as(&format!("SELECT {ALERT_COLUMNS} FROM alerts {filter} ORDER BY id DESC LIMIT ?"))
                .bind(query.limit())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_alert())).collect()
    }
}
