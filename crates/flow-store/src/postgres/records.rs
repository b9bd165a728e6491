//! The server's records in PostgreSQL: users, stored flows, schedules and metrics rollups.

use chrono::{DateTime, Utc};
use flow_model::{Flow, to_canonical_json};
use sqlx::error::ErrorKind;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::PgStore;
use super::rows::{
    FLOW_COLUMNS, FLOW_SUMMARY_COLUMNS, FlowRow, FlowSummaryRow, ROLLUP_COLUMNS, RollupRow, SCHEDULE_COLUMNS,
    ScheduleRow, USER_COLUMNS, UserRow,
};
use crate::codec::{enum_text, json_text, now};
use crate::error::violates;
use crate::{
    MinuteRollup, NewSchedule, Role, Schedule, ScheduleUpdate, StoreError, StoredFlow, StoredFlowSummary,
    User,
};

impl PgStore {
    pub(crate) async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let user = User {
            id: Uuid::now_v7(),
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            role,
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO accounts (id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(self.located(enum_text("role", &role))?)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if violates(&e, ErrorKind::UniqueViolation) {
                StoreError::UsernameTaken { database: self.name.to_string(), username: username.to_owned() }
            } else {
                self.query_error(e)
            }
        })?;
        Ok(user)
    }

    pub(crate) async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM accounts WHERE username = $1"))
                .bind(username)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        row.map(|r| self.located(r.into_user())).transpose()
    }

    pub(crate) async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM accounts WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        row.map(|r| self.located(r.into_user())).transpose()
    }

    pub(crate) async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM accounts ORDER BY username"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_user())).collect()
    }

    pub(crate) async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM accounts WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn create_flow(&self, owner: Uuid, flow: &Flow) -> Result<StoredFlow, StoreError> {
        let at = now();
        let stored = StoredFlow {
            id: Uuid::now_v7(),
            owner,
            version: 1,
            flow: flow.clone(),
            created_at: at,
            updated_at: at,
        };
        sqlx::query(
            "INSERT INTO flows (id, owner, name, version, flow, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5::json, $6, $7)",
        )
        .bind(stored.id)
        .bind(owner)
        .bind(&flow.name)
        .bind(stored.version)
        .bind(to_canonical_json(flow))
        .bind(at)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.reference_error(e, || format!("user {owner}")))?;
        Ok(stored)
    }

    pub(crate) async fn flow(&self, id: Uuid) -> Result<Option<StoredFlow>, StoreError> {
        let row: Option<FlowRow> = sqlx::query_as(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        row.map(|r| self.located(r.into_flow())).transpose()
    }

    pub(crate) async fn list_flows(&self, owner: Option<Uuid>) -> Result<Vec<StoredFlowSummary>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(format!("SELECT {FLOW_SUMMARY_COLUMNS} FROM flows"));
        if let Some(owner) = owner {
            sql.push(" WHERE owner = ").push_bind(owner);
        }
        sql.push(" ORDER BY name, id");
        let rows: Vec<FlowSummaryRow> =
            sql.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        Ok(rows.into_iter().map(FlowSummaryRow::into_summary).collect())
    }

    pub(crate) async fn update_flow(
        &self,
        id: Uuid,
        expected_version: i64,
        flow: &Flow,
    ) -> Result<StoredFlow, StoreError> {
        let at = now();
        // One statement checks and writes: of two updates from the same version, one matches.
        let updated: Option<(Uuid, i64, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE flows SET name = $1, flow = $2::json, version = version + 1, updated_at = $3 \
             WHERE id = $4 AND version = $5 RETURNING owner, version, created_at",
        )
        .bind(&flow.name)
        .bind(to_canonical_json(flow))
        .bind(at)
        .bind(id)
        .bind(expected_version)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        if let Some((owner, version, created_at)) = updated {
            return Ok(StoredFlow { id, owner, version, flow: flow.clone(), created_at, updated_at: at });
        }
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM flows WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Err(match current {
            Some(current) => StoreError::VersionConflict { database: self.name.to_string(), id, current },
            None => self.not_found("flow", id),
        })
    }

    pub(crate) async fn delete_flow(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM flows WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn create_schedule(&self, new: &NewSchedule) -> Result<Schedule, StoreError> {
        let at = now();
        let schedule = Schedule {
            id: Uuid::now_v7(),
            owner: new.owner,
            flow_id: new.flow_id,
            cron: new.cron.clone(),
            timezone: new.timezone.clone(),
            vars: new.vars.clone(),
            enabled: new.enabled,
            created_at: at,
            updated_at: at,
        };
        sqlx::query(
            "INSERT INTO schedules (id, owner, flow_id, cron, timezone, vars, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)",
        )
            .bind(schedule.id)
            .bind(new.owner)
            .bind(new.flow_id)
            .bind(&new.cron)
            .bind(&new.timezone)
            .bind(self.located(json_text("schedule vars", &new.vars))?)
            .bind(new.enabled)
            .bind(at)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| self.reference_error(e, || format!("user {} or flow {}", new.owner, new.flow_id)))?;
        Ok(schedule)
    }

    pub(crate) async fn schedule(&self, id: Uuid) -> Result<Option<Schedule>, StoreError> {
        let row: Option<ScheduleRow> =
            sqlx::query_as(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        row.map(|r| self.located(r.into_schedule())).transpose()
    }

    pub(crate) async fn list_schedules(&self, owner: Option<Uuid>) -> Result<Vec<Schedule>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(format!("SELECT {SCHEDULE_COLUMNS} FROM schedules"));
        if let Some(owner) = owner {
            sql.push(" WHERE owner = ").push_bind(owner);
        }
        sql.push(" ORDER BY id");
        let rows: Vec<ScheduleRow> =
            sql.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_schedule())).collect()
    }

    pub(crate) async fn list_enabled_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let rows: Vec<ScheduleRow> =
            sqlx::query_as(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE enabled ORDER BY id"))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_schedule())).collect()
    }

    pub(crate) async fn update_schedule(
        &self,
        id: Uuid,
        update: &ScheduleUpdate,
    ) -> Result<Option<Schedule>, StoreError> {
        let vars = update.vars.as_ref().map(|v| json_text("schedule vars", v)).transpose();
        let row: Option<ScheduleRow> = sqlx::query_as(&format!(
            "UPDATE schedules SET flow_id = coalesce($1, flow_id), cron = coalesce($2, cron), \
                 timezone = coalesce($3, timezone), vars = coalesce($4::jsonb, vars), \
                 enabled = coalesce($5, enabled), updated_at = $6 \
             WHERE id = $7 RETURNING {SCHEDULE_COLUMNS}"
        ))
        .bind(update.flow_id)
        .bind(&update.cron)
        .bind(&update.timezone)
        .bind(self.located(vars)?)
        .bind(update.enabled)
        .bind(now())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        // Only a new flow id can name a missing row.
        .map_err(|e| {
            self.reference_error(e, || match update.flow_id {
                Some(flow_id) => format!("flow {flow_id}"),
                None => "the schedule's flow".to_owned(),
            })
        })?;
        row.map(|r| self.located(r.into_schedule())).transpose()
    }

    pub(crate) async fn delete_schedule(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn metrics_minutes(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>, StoreError> {
        // Fixed-width time text: text order is time order.
        let rows: Vec<RollupRow> = sqlx::query_as(&format!(
            "SELECT {ROLLUP_COLUMNS} FROM metrics_minute WHERE minute >= $1 ORDER BY minute, flow"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error(e))?;
        rows.into_iter().map(|r| self.located(r.into_rollup())).collect()
    }

    /// A write refused because a row it names is missing becomes `MissingReference`.
    fn reference_error(&self, source: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
        if violates(&source, ErrorKind::ForeignKeyViolation) {
            StoreError::MissingReference { database: self.name.to_string(), what: what() }
        } else {
            self.query_error(source)
        }
    }
}
