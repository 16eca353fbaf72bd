//! The organization a tenant's conversations belong to — departments → desks → agents — and
//! what a user may see (a data scope over them) and do (feature permissions). Every REST route,
//! export and live feed asks [`Scope::allows`] (or filters by [`Scope::sql`]) before it shows a
//! session.

mod directory;

pub use directory::Directory;

use serde::{Deserialize, Serialize};

/// Where a session sits in the organization: its agent and that agent's desk and department
/// (ids and the names they had when the session ended).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// The agent's phone extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_name: Option<String>,
}

/// Which sessions of their tenant a user sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Every session of the tenant, placed or not.
    All,
    /// Sessions placed in any of these departments, desks or agents (ids).
    Only {
        #[serde(default)]
        departments: Vec<String>,
        #[serde(default)]
        desks: Vec<String>,
        #[serde(default)]
        agents: Vec<String>,
    },
}

impl Scope {
    /// Whether a session with this placement is visible.
    pub fn allows(&self, placement: &Placement) -> bool {
        match self {
            Scope::All => true,
            Scope::Only { departments, desks, agents } => {
                let has = |list: &[String], id: &Option<String>| id.as_ref().is_some_and(|id| list.contains(id));
                has(departments, &placement.department_id)
                    || has(desks, &placement.desk_id)
                    || has(agents, &placement.agent_id)
            }
        }
    }

    /// A SQL condition over a table with `agent_id`, `desk_id` and `department_id` columns
    /// (qualified by `alias.` when given), with `$n` placeholders numbered from `first`, and
    /// the values to bind in order. `Scope::All` is `TRUE` with nothing to bind.
    pub fn sql(&self, alias: &str, first: usize) -> (String, Vec<String>) {
        let Scope::Only { departments, desks, agents } = self else {
            return ("1 = 1".into(), Vec::new());
        };
        let prefix = if alias.is_empty() { String::new() } else { format!("{alias}.") };
        let mut binds = Vec::new();
        let mut parts = Vec::new();
        for (column, ids) in [("department_id", departments), ("desk_id", desks), ("agent_id", agents)] {
            if ids.is_empty() {
                continue;
            }
            let placeholders: Vec<String> = ids
                .iter()
                .map(|id| {
                    binds.push(id.clone());
                    format!("${}", first + binds.len() - 1)
                })
                .collect();
            parts.push(format!("{prefix}{column} IN ({})", placeholders.join(", ")));
        }
        if parts.is_empty() {
            return ("1 = 0".into(), binds);
        }
        (format!("({})", parts.join(" OR ")), binds)
    }
}

/// What a user may do beyond reading the sessions in their scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// `/v1/reports`.
    Reports,
    /// `POST /v1/uploads`.
    Uploads,
    /// Deleting finished calls and their recordings.
    DeleteCalls,
    /// The alerts list and acknowledging alerts.
    Alerts,
    /// `/v1/usage`.
    Usage,
    /// Departments, desks, agents and users.
    AgentAdmin,
    /// Webhooks, rules and analysis settings.
    Integrations,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::Reports,
        Permission::Uploads,
        Permission::DeleteCalls,
        Permission::Alerts,
        Permission::Usage,
        Permission::AgentAdmin,
        Permission::Integrations,
    ];
}
