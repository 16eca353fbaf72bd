//! The organization in memory, so a live session is placed (agent → desk → department) the
//! moment its agent is known without a database round trip: a call by the agent's extension, a
//! chat by the name of the agent who takes it over or is assigned it. Reloaded per tenant after
//! every change through the API.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::{OrgRows, Store, StoreError};

use super::Placement;

#[derive(Clone, Default)]
pub struct Directory {
    tenants: Arc<RwLock<HashMap<String, Arc<OrgRows>>>>,
}

impl Directory {
    pub async fn load(store: &Store) -> Result<Directory, StoreError> {
        let directory = Directory::default();
        *directory.tenants.write().expect("directory lock") =
            store.org(None).await?.into_iter().map(|(tenant, rows)| (tenant, Arc::new(rows))).collect();
        Ok(directory)
    }

    /// Reads one tenant's organization again (after a change through the API).
    pub async fn reload(&self, store: &Store, tenant: &str) -> Result<(), StoreError> {
        let rows = store.org(Some(tenant)).await?.into_iter().next().map(|(_, rows)| rows).unwrap_or_default();
        self.tenants.write().expect("directory lock").insert(tenant.to_string(), Arc::new(rows));
        Ok(())
    }

    /// The tenant's organization as loaded.
    pub fn rows(&self, tenant: &str) -> Arc<OrgRows> {
        self.tenants.read().expect("directory lock").get(tenant).cloned().unwrap_or_default()
    }

    /// The active agent with this extension (digits compared, so `+1 (555) 0100` matches
    /// `15550100`).
    pub fn by_extension(&self, tenant: &str, extension: &str) -> Option<Placement> {
        let wanted = digits(extension);
        if wanted.is_empty() {
            return None;
        }
        let rows = self.rows(tenant);
        let agent =
            rows.agents.iter().find(|a| a.active && a.extension.as_deref().is_some_and(|e| digits(e) == wanted))?;
        Some(place(&rows, &agent.id))
    }

    /// The active agent with this id or (case-insensitively) this name.
    pub fn by_agent(&self, tenant: &str, id_or_name: &str) -> Option<Placement> {
        let wanted = id_or_name.trim();
        let rows = self.rows(tenant);
        let agent = rows
            .agents
            .iter()
            .filter(|a| a.active)
            .find(|a| a.id == wanted)
            .or_else(|| rows.agents.iter().filter(|a| a.active).find(|a| a.name.eq_ignore_ascii_case(wanted)))?;
        Some(place(&rows, &agent.id))
    }

    /// Fills the names of a stored placement's ids (deactivated agents keep theirs).
    pub fn named(&self, tenant: &str, placement: &Placement) -> Placement {
        match &placement.agent_id {
            Some(agent) => place(&self.rows(tenant), agent),
            None => placement.clone(),
        }
    }
}

/// The placement of agent `id` with every name, as far as the rows know it.
fn place(rows: &OrgRows, id: &str) -> Placement {
    let agent = rows.agents.iter().find(|a| a.id == id);
    let desk = agent.and_then(|a| rows.desks.iter().find(|d| d.id == a.desk_id));
    let department = desk.and_then(|d| rows.departments.iter().find(|p| p.id == d.department_id));
    Placement {
        agent_id: Some(id.to_string()),
        agent_name: agent.map(|a| a.name.clone()),
        extension: agent.and_then(|a| a.extension.clone()),
        desk_id: desk.map(|d| d.id.clone()),
        desk_name: desk.map(|d| d.name.clone()),
        department_id: department.map(|d| d.id.clone()),
        department_name: department.map(|d| d.name.clone()),
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Agent, Department, Desk};

    fn directory() -> Directory {
        let rows = OrgRows {
            departments: vec![Department { id: "sales".into(), name: "Sales".into() }],
            desks: vec![Desk { id: "d1".into(), department_id: "sales".into(), name: "Desk A".into() }],
            agents: vec![
                Agent {
                    id: "a1".into(),
                    desk_id: "d1".into(),
                    name: "Dana".into(),
                    extension: Some("1001".into()),
                    active: true,
                    deactivated_at: None,
                },
                Agent {
                    id: "a0".into(),
                    desk_id: "d1".into(),
                    name: "Ex".into(),
                    extension: Some("1002".into()),
                    active: false,
                    deactivated_at: None,
                },
            ],
        };
        let directory = Directory::default();
        directory.tenants.write().unwrap().insert("t".into(), Arc::new(rows));
        directory
    }

    #[test]
    fn places_by_extension_name_and_id_active_agents_only() {
        let d = directory();
        let placed = d.by_extension("t", "sip:1001").unwrap();
        assert_eq!(placed.agent_name.as_deref(), Some("Dana"));
        assert_eq!(placed.desk_name.as_deref(), Some("Desk A"));
        assert_eq!(placed.department_id.as_deref(), Some("sales"));
        assert_eq!(d.by_agent("t", "dana").unwrap().agent_id.as_deref(), Some("a1"));
        assert_eq!(d.by_agent("t", "a1").unwrap().agent_id.as_deref(), Some("a1"));
        assert!(d.by_extension("t", "1002").is_none(), "a deactivated agent takes no new calls");
        assert!(d.by_extension("other", "1001").is_none(), "tenants are apart");
        assert!(d.by_extension("t", "").is_none());
        let kept = d.named("t", &Placement { agent_id: Some("a0".into()), ..Default::default() });
        assert_eq!(kept.agent_name.as_deref(), Some("Ex"), "history keeps a deactivated agent's name");
    }
}
