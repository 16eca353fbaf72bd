//! Bearer tokens (RFC 6750): random secrets handed out once, stored only as SHA-256 hashes.
//! The admin's bootstrap token comes from `admin_token` or is generated at first start.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use crate::clock::unix_ms;
use crate::config::Config;
use crate::error::Problem;
use crate::org::{Permission, Scope};
use crate::server::App;
use crate::store::{Store, StoreError, TokenGrant, TokenRow};

/// Who a request acts for.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's id: names the supervisor in take-over ownership.
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub admin: bool,
    /// Which of the tenant's sessions this principal sees.
    pub scope: Scope,
    /// What it may do beyond reading (an admin may do everything).
    pub permissions: Vec<Permission>,
}

impl Principal {
    /// `Ok` when the principal holds `permission`, else a 403 naming it.
    pub fn require(&self, permission: Permission) -> Result<(), Problem> {
        if self.admin || self.permissions.contains(&permission) {
            return Ok(());
        }
        let name = serde_json::to_value(permission).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        Err(Problem::forbidden(format!("this needs the {name} permission")))
    }
}

pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token.
pub fn generate() -> String {
    format!("hark_{}", hex::encode(rand::random::<[u8; 32]>()))
}

fn refuse(reason: &'static str, detail: &str) -> Problem {
    metrics::counter!(crate::metrics::AUTH_REFUSALS, "reason" => reason).increment(1);
    Problem::unauthorized(detail)
}

/// What a supervisor token without a user (from `POST /v1/tokens`) may do: it sees the whole
/// tenant; administration and integrations need the admin or a user granted them.
const SUPERVISOR_PERMISSIONS: [Permission; 4] =
    [Permission::Reports, Permission::Uploads, Permission::Alerts, Permission::Usage];

/// The principal of the `Authorization: Bearer` header or, for browsers' WebSockets, the
/// `access_token` query parameter.
pub async fn authenticate(app: &App, headers: &HeaderMap, query_token: Option<&str>) -> Result<Principal, Problem> {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = header_token.or(query_token).filter(|t| !t.is_empty()) else {
        return Err(refuse("missing", "a bearer token is required"));
    };
    match app.store.token_by_hash(&sha256_hex(token)).await {
        Ok(Some(TokenGrant { token, user: Some(user) })) if !token.admin => {
            if !user.active {
                return Err(refuse("deactivated", "this token's user is deactivated"));
            }
            Ok(Principal {
                id: token.id,
                name: token.name,
                tenant: token.tenant,
                admin: false,
                scope: user.scope,
                permissions: user.permissions,
            })
        }
        Ok(Some(TokenGrant { token, .. })) => Ok(Principal {
            id: token.id,
            name: token.name,
            tenant: token.tenant,
            scope: Scope::All,
            permissions: if token.admin { Permission::ALL.to_vec() } else { SUPERVISOR_PERMISSIONS.to_vec() },
            admin: token.admin,
        }),
        Ok(None) => Err(refuse("unknown", "unknown bearer token")),
        Err(error) => Err(Problem::internal(error)),
    }
}

impl FromRequestParts<Arc<App>> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Principal, Problem> {
        authenticate(app, &parts.headers, None).await
    }
}

/// Installs the admin token: the configured one, or one generated once and kept in
/// DATA_DIR/admin-token. Returns where it came from, for the start-up log.
pub async fn bootstrap_admin(store: &Store, config: &Config, now: time::OffsetDateTime) -> Result<String, StoreError> {
    let (token, source) = if config.admin_token.is_empty() {
        let path = config.data_dir.join("admin-token");
        let token = match std::fs::read_to_string(&path) {
            Ok(token) if !token.trim().is_empty() => token.trim().to_string(),
            _ => {
                let token = generate();
                write_secret(&path, &token).map_err(|e| StoreError::Value(format!("{}: {e}", path.display())))?;
                token
            }
        };
        (token, format!("{}", path.display()))
    } else {
        (config.admin_token.clone(), "admin_token setting".to_string())
    };
    let row = TokenRow {
        id: "admin".into(),
        name: "admin".into(),
        tenant: config.admin_tenant.clone(),
        admin: true,
        user_id: None,
    };
    store.put_token(&row, &sha256_hex(&token), unix_ms(now)).await?;
    Ok(source)
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(format!("{secret}\n").as_bytes())
}
