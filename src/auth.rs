//! Who is asking: the bearer token's subject and role, or everyone-is-admin
//! in open mode (no secret configured).

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

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

/// Where the keys that verify tokens come from; all optional, and any mix
/// may be configured at once (the token's `alg` and `kid` pick the key).
#[derive(Clone, Debug, Default)]
pub struct KeySources<'a> {
    /// HS256 shared secret.
    pub secret: Option<&'a str>,
    /// PEM public key: RSA (RS256) or P-256 (ES256).
    pub public_key_pem: Option<&'a [u8]>,
    /// A JWKS document (`{"keys": [...]}`): RSA and P-256 keys, picked by `kid`.
    pub jwks_json: Option<&'a [u8]>,
    /// When set, the token's `iss` must equal it.
    pub issuer: Option<&'a str>,
    /// When set, the token's `aud` must contain it.
    pub audience: Option<&'a str>,
}

/// One key a token may be signed with.
#[derive(Clone)]
struct VerifyingKey {
    algorithm: Algorithm,
    /// JWKS keys carry an id; a token naming a `kid` only matches it.
    kid: Option<String>,
    key: DecodingKey,
}

/// Verifies bearer tokens: HS256 with a shared secret, RS256/ES256 with
/// public keys from a PEM file or a JWKS document, `iss`/`aud` when set.
/// No key at all is open mode.
#[derive(Clone)]
pub struct Authenticator {
    keys: Vec<VerifyingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Authenticator {
    /// Every configured key, or why one cannot be used.
    pub fn from_sources(sources: &KeySources) -> Result<Self, String> {
        let mut keys = Vec::new();
        if let Some(secret) = sources.secret {
            keys.push(VerifyingKey {
                algorithm: Algorithm::HS256,
                kid: None,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        if let Some(pem) = sources.public_key_pem {
            keys.push(pem_key(pem)?);
        }
        if let Some(json) = sources.jwks_json {
            let set: jsonwebtoken::jwk::JwkSet =
                serde_json::from_slice(json).map_err(|e| format!("JWKS: not a key set: {e}"))?;
            for jwk in &set.keys {
                keys.push(jwks_key(jwk)?);
            }
            if set.keys.is_empty() {
                return Err("JWKS: the key set is empty".into());
            }
        }
        Ok(Self {
            keys,
            issuer: sources.issuer.map(str::to_owned),
            audience: sources.audience.map(str::to_owned),
        })
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The viewer for an `Authorization` header value (or its absence).
    pub fn viewer(&self, header: Option<&str>) -> Result<Viewer, AuthError> {
        if self.is_open() {
            return Ok(Viewer::open());
        }
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Malformed)?;
        let head =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let key = self
            .keys
            .iter()
            .find(|k| {
                k.algorithm == head.alg
                    && match (&head.kid, &k.kid) {
                        (Some(wanted), Some(kid)) => wanted == kid,
                        _ => true,
                    }
            })
            .ok_or_else(|| {
                AuthError::Invalid(format!("no key configured for {:?} tokens", head.alg))
            })?;
        let data = decode::<Claims>(token, &key.key, &self.validation(key.algorithm)).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            },
        )?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty sub".into()));
        }
        Ok(Viewer {
            subject: data.claims.sub,
            role: data.claims.role,
        })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience a token's `aud` is not checked
            // (jsonwebtoken would otherwise refuse every token that has one).
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = 0;
        validation
    }
}

/// A PEM public key: RSA means RS256, an EC key means ES256.
fn pem_key(pem: &[u8]) -> Result<VerifyingKey, String> {
    let (algorithm, key) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        (Algorithm::RS256, key)
    } else {
        let key = DecodingKey::from_ec_pem(pem)
            .map_err(|e| format!("public key: neither an RSA nor an EC PEM key ({e})"))?;
        (Algorithm::ES256, key)
    };
    Ok(VerifyingKey {
        algorithm,
        kid: None,
        key,
    })
}

fn jwks_key(jwk: &jsonwebtoken::jwk::Jwk) -> Result<VerifyingKey, String> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let kid = jwk.common.key_id.clone();
    let named = |what: &str| format!("JWKS key {:?}: {what}", kid.as_deref().unwrap_or("?"));
    use jsonwebtoken::jwk::KeyAlgorithm;
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (_, Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (_, Some(KeyAlgorithm::ES256)) => Algorithm::ES256,
        (_, Some(other)) => {
            return Err(named(&format!("{other:?} is not supported (RS256, ES256)")))
        }
        (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return Err(named("only RSA and P-256 keys are supported")),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| named(&e.to_string()))?;
    Ok(VerifyingKey {
        algorithm,
        kid,
        key,
    })
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
