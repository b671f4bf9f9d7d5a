//! Who is asking: the bearer token's subject and role, or everyone-is-admin
//! in open mode (no secret configured).

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::graphql::error::forbidden;
use crate::store::Scope;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and writes its own executions only.
    User,
    /// Every execution; claims, locks, recovery.
    Worker,
    Admin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
}

#[derive(Clone, Debug)]
pub struct Viewer {
    pub subject: String,
    pub role: Role,
}

impl Viewer {
    pub fn open() -> Self {
        Self {
            subject: "open-mode".into(),
            role: Role::Admin,
        }
    }

    pub fn scope(&self) -> Scope {
        match self.role {
            Role::User => Scope::Owner(self.subject.clone()),
            Role::Worker | Role::Admin => Scope::All,
        }
    }

    /// Claims, leases, recovery and failure bookkeeping are for workers.
    pub fn require_worker(&self) -> async_graphql::Result<()> {
        match self.role {
            Role::User => Err(forbidden("this operation needs the worker or admin role")),
            Role::Worker | Role::Admin => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send 'Authorization: Bearer <JWT>'")]
    Missing,
    #[error("malformed Authorization header: expected 'Bearer <JWT>'")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies HS256 tokens with the configured secret.
#[derive(Clone)]
pub struct Authenticator {
    key: Option<DecodingKey>,
    validation: Validation,
}

impl Authenticator {
    pub fn new(secret: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        Self {
            key: secret.map(|s| DecodingKey::from_secret(s.as_bytes())),
            validation,
        }
    }

    pub fn is_open(&self) -> bool {
        self.key.is_none()
    }

    /// The viewer for an `Authorization` header value (or its absence).
    pub fn viewer(&self, header: Option<&str>) -> Result<Viewer, AuthError> {
        let Some(key) = &self.key else {
            return Ok(Viewer::open());
        };
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Malformed)?;
        let data = decode::<Claims>(token, key, &self.validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(e.to_string()),
        })?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty sub".into()));
        }
        Ok(Viewer {
            subject: data.claims.sub,
            role: data.claims.role,
        })
    }
}

/// Signs a token; for tests, tools and operators minting worker tokens.
pub fn sign(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}
