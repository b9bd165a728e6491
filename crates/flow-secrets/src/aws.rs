//! The AWS provider: AWS Secrets Manager's `GetSecretValue`, signed with SigV4 (`aws-sigv4`) and
//! sent with reqwest. A reference is `secret-id#json-key` (`{{ secrets.aws["prod/db#password"] }}`)
//! or `secret-id` for the whole secret string. Credentials come the usual way: the
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` variables, else the
//! shared credentials file's profile (`AWS_PROFILE`, default `default`).

use std::path::PathBuf;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::SecretsError;

/// Access keys (never shown: `Debug` redacts them).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsCredentials({}, ***)", self.access_key_id)
    }
}

/// Region, endpoint and credentials: `AWS_REGION` (or `AWS_DEFAULT_REGION`),
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` (or `AWS_ENDPOINT_URL`) to point elsewhere than AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AwsConfig {
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: AwsCredentials,
}

impl AwsConfig {
    /// The configuration from the environment; `None` without a region.
    pub fn from_env() -> Result<Option<Self>, SecretsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) else { return Ok(None) };
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => {
                AwsCredentials { access_key_id, secret_access_key, session_token: var("AWS_SESSION_TOKEN") }
            }
            _ => shared_file_credentials(&var("AWS_PROFILE").unwrap_or_else(|| "default".into()))?,
        };
        Ok(Some(Self {
            region,
            endpoint: var("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| var("AWS_ENDPOINT_URL")),
            credentials,
        }))
    }
}

/// The profile's keys in `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`.
fn shared_file_credentials(profile: &str) -> Result<AwsCredentials, SecretsError> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|home| home.join(".aws").join("credentials")))
        .ok_or_else(|| {
            SecretsError::Invalid(
                "AWS_REGION is set but there is no home directory for ~/.aws/credentials".into(),
            )
        })?;
    let missing = || {
        SecretsError::Invalid(format!(
            "AWS_REGION is set but there are no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile `{profile}` in {}",
            path.display()
        ))
    };
    let ini = ini::Ini::load_from_file(&path).map_err(|_| missing())?;
    let section = ini.section(Some(profile)).ok_or_else(missing)?;
    Ok(AwsCredentials {
        access_key_id: section.get("aws_access_key_id").ok_or_else(missing)?.to_owned(),
        secret_access_key: section.get("aws_secret_access_key").ok_or_else(missing)?.to_owned(),
        session_token: section.get("aws_session_token").map(str::to_owned),
    })
}

/// Why a read failed, and whether trying again may help.
#[derive(Debug)]
pub struct AwsError {
    pub message: String,
    pub transient: bool,
}

/// An AWS Secrets Manager reader.
#[derive(Debug)]
pub struct AwsProvider {
    config: AwsConfig,
    http: reqwest::Client,
}

impl AwsProvider {
    pub fn new(config: AwsConfig) -> Self {
        // The workspace's rustls uses ring; reqwest built without a provider needs it named.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self { config, http: reqwest::Client::new() }
    }

    pub(crate) fn config(&self) -> &AwsConfig {
        &self.config
    }

    fn endpoint(&self) -> String {
        self.config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://secretsmanager.{}.amazonaws.com", self.config.region))
    }

    /// `aws secrets manager at <endpoint>`: how errors and the circuit breaker name this provider.
    pub fn name(&self) -> String {
        format!("aws secrets manager at {}", self.endpoint())
    }

    /// The value of `reference` (`secret-id#json-key`, or `secret-id`).
    pub async fn read(&self, reference: &str) -> Result<String, AwsError> {
        let (id, key) = match reference.rsplit_once('#') {
            Some((id, key)) => (id, Some(key)),
            None => (reference, None),
        };
        let fail =
            |message: String, transient: bool| AwsError { message: format!("{id}: {message}"), transient };
        let url = format!("{}/", self.endpoint().trim_end_matches('/'));
        let body = serde_json::json!({ "SecretId": id }).to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ];
        let signed = self
            .sign(&url, &headers, body.as_bytes())
            .map_err(|e| fail(format!("cannot sign the request: {e}"), false))?;
        let mut request = self.http.post(&url).body(body);
        for (name, value) in
            headers.iter().copied().chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(format!("AWS Secrets Manager cannot be reached: {e}"), true))?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.map_err(|e| {
            fail(format!("AWS Secrets Manager answered {status} with no JSON: {e}"), status.is_server_error())
        })?;
        if !status.is_success() {
            let kind = answer["__type"].as_str().unwrap_or_default();
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            let said = answer["message"].as_str().or(answer["Message"].as_str()).unwrap_or_default();
            return Err(match kind {
                "ResourceNotFoundException" => fail("no such secret".into(), false),
                "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" => {
                    fail(
                        format!(
                            "permission denied (wrong or expired credentials, or a policy without GetSecretValue): {said}"
                        ),
                        false,
                    )
                }
                _ => fail(
                    format!("AWS Secrets Manager answered {status} {kind}: {said}"),
                    status.is_server_error(),
                ),
            });
        }
        let Some(text) = answer["SecretString"].as_str() else {
            return Err(fail("the secret has no string value (binary secrets are not read)".into(), false));
        };
        let Some(key) = key else { return Ok(text.to_owned()) };
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| {
                fail(format!("`#{key}` needs a JSON object in the secret, and it holds plain text"), false)
            })?;
        match fields.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(fail(
                format!(
                    "has no key `{key}` (it has: {})",
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                false,
            )),
        }
    }

    /// The SigV4 headers for a POST of `body` to `url` with `headers`.
    fn sign(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        let c = &self.config.credentials;
        let identity =
            Credentials::new(&c.access_key_id, &c.secret_access_key, c.session_token.clone(), None, "flow")
                .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let request = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
        Ok(instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }
}
