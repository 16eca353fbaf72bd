//! The organization's tables — departments, desks, agents, users — always within one tenant.
//! Agents are deactivated, never deleted or renamed, so finished sessions keep their agent.

use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

use crate::clock::{from_unix_ms, unix_ms};
use crate::org::{Permission, Placement, Scope};
use crate::session::SessionId;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Department {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Desk {
    pub id: String,
    pub department_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: String,
    pub desk_id: String,
    pub name: String,
    /// The phone extension calls are matched by.
    pub extension: Option<String>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deactivated_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub permissions: Vec<Permission>,
    pub active: bool,
}

/// A tenant's whole organization, as the in-memory directory holds it.
#[derive(Debug, Clone, Default)]
pub struct OrgRows {
    pub departments: Vec<Department>,
    pub desks: Vec<Desk>,
    pub agents: Vec<Agent>,
}

impl Store {
    /// Every tenant's organization (loaded once at start, and per tenant after each change).
    pub async fn org(&self, tenant: Option<&str>) -> Result<Vec<(String, OrgRows)>, StoreError> {
        let mut by_tenant: std::collections::BTreeMap<String, OrgRows> = Default::default();
        let filter = "WHERE ($1 = '' OR tenant = $1)";
        let tenant = tenant.unwrap_or_default().to_string();
        for row in sqlx::query(&format!("SELECT id, tenant, name FROM departments {filter} ORDER BY name, id"))
            .bind(tenant.clone())
            .fetch_all(&self.pool)
            .await?
        {
            let entry = by_tenant.entry(row.try_get("tenant")?).or_default();
            entry.departments.push(Department { id: row.try_get("id")?, name: row.try_get("name")? });
        }
        for row in sqlx::query(&format!("SELECT id, tenant, department_id, name FROM desks {filter} ORDER BY name, id"))
            .bind(tenant.clone())
            .fetch_all(&self.pool)
            .await?
        {
            let entry = by_tenant.entry(row.try_get("tenant")?).or_default();
            entry.desks.push(Desk {
                id: row.try_get("id")?,
                department_id: row.try_get("department_id")?,
                name: row.try_get("name")?,
            });
        }
        for row in sqlx::query(&format!(
            "SELECT id, tenant, desk_id, name, extension, active, deactivated_at FROM agents {filter} ORDER BY name, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?
        {
            let entry = by_tenant.entry(row.try_get("tenant")?).or_default();
            entry.agents.push(agent_from_row(&row)?);
        }
        Ok(by_tenant.into_iter().collect())
    }

    pub async fn add_department(
        &self,
        tenant: &str,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Department, StoreError> {
        let department = Department { id: uuid::Uuid::new_v4().to_string(), name: name.to_string() };
        sqlx::query("INSERT INTO departments (id, tenant, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&department.id)
            .bind(tenant)
            .bind(name)
            .bind(unix_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(department)
    }

    pub async fn add_desk(&self, tenant: &str, desk: &Desk, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO desks (id, tenant, department_id, name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&desk.id)
            .bind(tenant)
            .bind(&desk.department_id)
            .bind(&desk.name)
            .bind(unix_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn add_agent(&self, tenant: &str, agent: &Agent, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agents (id, tenant, desk_id, name, extension, active, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)",
        )
        .bind(&agent.id)
        .bind(tenant)
        .bind(&agent.desk_id)
        .bind(&agent.name)
        .bind(agent.extension.clone())
        .bind(unix_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deactivates an agent; false when the tenant has no such agent.
    pub async fn deactivate_agent(&self, tenant: &str, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE agents SET active = 0, deactivated_at = COALESCE(deactivated_at, $3) WHERE id = $1 AND tenant = $2",
        )
        .bind(id)
        .bind(tenant)
        .bind(unix_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn users(&self, tenant: &str) -> Result<Vec<User>, StoreError> {
        sqlx::query("SELECT id, name, scope, permissions, active FROM users WHERE tenant = $1 ORDER BY name, id")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    pub async fn user(&self, tenant: &str, id: &str) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT id, name, scope, permissions, active FROM users WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// Inserts the user, or replaces its scope, permissions and active flag.
    pub async fn put_user(&self, tenant: &str, user: &User, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, tenant, name, scope, permissions, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET scope = excluded.scope, permissions = excluded.permissions, \
             active = excluded.active",
        )
        .bind(&user.id)
        .bind(tenant)
        .bind(&user.name)
        .bind(serde_json::to_string(&user.scope)?)
        .bind(serde_json::to_string(&user.permissions)?)
        .bind(user.active as i64)
        .bind(unix_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The placement a stored session of the tenant has; None when the tenant has no such session.
    pub async fn session_placement(&self, tenant: &str, id: SessionId) -> Result<Option<Placement>, StoreError> {
        let row = sqlx::query("SELECT agent_id, desk_id, department_id FROM sessions WHERE id = $1 AND tenant = $2")
            .bind(id.to_string())
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Placement {
                agent_id: row.try_get("agent_id")?,
                desk_id: row.try_get("desk_id")?,
                department_id: row.try_get("department_id")?,
                ..Placement::default()
            })
        })
        .transpose()
    }
}

fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: row.try_get("id")?,
        desk_id: row.try_get("desk_id")?,
        name: row.try_get("name")?,
        extension: row.try_get("extension")?,
        active: row.try_get::<i64, _>("active")? != 0,
        deactivated_at: row.try_get::<Option<i64>, _>("deactivated_at")?.map(from_unix_ms),
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: serde_json::from_str(&row.try_get::<String, _>("scope")?)?,
        permissions: serde_json::from_str(&row.try_get::<String, _>("permissions")?)?,
        active: row.try_get::<i64, _>("active")? != 0,
    })
}
