//! Who is calling: passwords (argon2id hashes), tokens (HS256 JWTs signed with JWT_SECRET), and
//! the [`Caller`] extractor every protected handler takes.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use flow_store::{Role, User};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Hashes a password for the store (argon2id, random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a stored hash; a malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Makes jsonwebtoken use the pure-Rust crypto backend (it has no default). Idempotent.
pub fn install_crypto() {
    // An error means a provider is installed already.
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub name: String,
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    pub iat: i64,
}

/// Issues and checks tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, jsonwebtoken::errors::Error> {
        install_crypto();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            ttl,
        })
    }

    /// A token for `user`, and when it expires.
    pub fn issue(&self, user: &User) -> Result<(String, DateTime<Utc>), ApiError> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(12));
        let claims = Claims {
            sub: user.id,
            name: user.username.clone(),
            role: user.role,
            exp: expires.timestamp(),
            iat: now.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map(|token| (token, expires))
            .map_err(|e| ApiError::internal(format!("cannot sign a token: {e}")))
    }

    /// The caller a token stands for; expired, forged or malformed tokens are refused.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            ApiError::unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired: log in again".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature is not valid".to_owned(),
                _ => format!("not a valid token: {e}"),
            })
        })?;
        Ok(Caller { id: data.claims.sub, name: data.claims.name, role: data.claims.role })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may see and touch something owned by `owner`.
    pub fn owns(&self, owner: Option<Uuid>) -> bool {
        self.is_admin() || owner == Some(self.id)
    }

    /// Refuses callers who are not admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::forbidden("only an admin may do this")) }
    }

    /// The owner filter of a listing: none for admins, the caller otherwise.
    pub fn scope(&self) -> Option<Uuid> {
        (!self.is_admin()).then_some(self.id)
    }
}

impl Caller {
    /// The caller a request's `Authorization: Bearer <token>` header stands for.
    pub fn from_headers(headers: &axum::http::HeaderMap, tokens: &Tokens) -> Result<Caller, ApiError> {
        let header = headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing `Authorization: Bearer <token>` (POST /auth/login)")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        tokens.verify(token)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_headers(&parts.headers, &state.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        User {
            id: Uuid::now_v7(),
            username: "ann".into(),
            password_hash: String::new(),
            role,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("s3cret!").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("s3cret!", &hash));
        assert!(!verify_password("s3cret", &hash));
        assert!(!verify_password("s3cret!", "not a hash"));
    }

    #[test]
    fn tokens_round_trip_and_forgeries_expiry_are_refused() {
        let tokens = Tokens::new(&[7; 32], Duration::from_secs(60)).expect("keys");
        let ann = user(Role::User);
        let (token, _) = tokens.issue(&ann).expect("issued");
        let caller = tokens.verify(&token).expect("valid");
        assert_eq!((caller.id, caller.role), (ann.id, Role::User));

        let other = Tokens::new(&[8; 32], Duration::from_secs(60)).expect("keys");
        let forged = other.verify(&token).expect_err("other secret");
        assert_eq!(forged.status, axum::http::StatusCode::UNAUTHORIZED);

        let claims = Claims { sub: ann.id, name: "ann".into(), role: Role::Admin, exp: 1, iat: 0 };
        let key = EncodingKey::from_secret(&[7; 32]).expect("key");
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encodes");
        let err = tokens.verify(&expired).expect_err("expired");
        assert!(err.message.contains("expired"), "{}", err.message);
        assert!(tokens.verify("a.b.c").is_err());
    }
}
