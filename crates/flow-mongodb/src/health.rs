//! The connection test behind "Test connection" and `flow doctor`: is the server reachable, are
//! the credentials accepted, which version is it; the message says what is wrong and how to fix
//! it. Quick (3 s server selection) and never shows a password.

use std::time::Duration;

use flow_model::{ConnectionTest, redact_url};
use mongodb::bson::{Document, doc};
use mongodb::error::Error as DriverError;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::connect::{is_auth_failure, parse_url, scrub, server_message};

/// How long the test waits for a server.
const TEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Tests a MongoDB connection URL (already rendered, secrets in place).
pub async fn test_connection(url: &str) -> ConnectionTest {
    let shown = redact_url(url);
    let parts = match parse_url(url) {
        Ok(p) => p,
        Err(e) => return unreachable(format!("{shown}: {e}")),
    };
    let secrets = parts.secrets;
    let says = |e: &DriverError| scrub(&server_message(e), &secrets);
    let mut options = match ClientOptions::parse(url).await {
        Ok(o) => o,
        Err(e) => {
            return unreachable(format!(
                "{shown}: the URL is not valid: {} — fix the URL's host or options",
                says(&e)
            ));
        }
    };
    options.server_selection_timeout = Some(TEST_TIMEOUT);
    options.connect_timeout = Some(TEST_TIMEOUT);
    options.app_name.get_or_insert_with(|| "flow-platform connection test".to_owned());
    let client = match Client::with_options(options) {
        Ok(c) => c,
        Err(e) => return unreachable(format!("{shown}: {}", says(&e))),
    };
    let admin = client.database("admin");
    let version = match admin.run_command(doc! {"buildInfo": 1}).await {
        Ok(info) => info.get_str("version").ok().map(str::to_owned),
        Err(e) if is_auth_failure(&e) => {
            return ConnectionTest {
                reachable: true,
                authenticated: false,
                server_version: None,
                message: format!(
                    "{shown}: the server refused the credentials: {} — check the user name, password and authSource in the URL",
                    says(&e)
                ),
            };
        }
        Err(e) => {
            return unreachable(format!(
                "{shown}: no MongoDB server answered within {} s: {} — check that the server is running and that the host and port are right (a single server needs directConnection=true; a replica set needs its replicaSet name)",
                TEST_TIMEOUT.as_secs(),
                says(&e)
            ));
        }
    };
    // buildInfo needs no rights: listing collections shows whether these credentials may work.
    let probe = match &parts.default_database {
        Some(db) => list_collections(&client.database(db)).await,
        None => {
            admin.run_command(doc! {"listDatabases": 1, "nameOnly": true, "authorizedDatabases": true}).await
        }
    };
    let version_text = version.as_deref().unwrap_or("of unknown version");
    match probe {
        Ok(_) => ConnectionTest {
            reachable: true,
            authenticated: true,
            server_version: version.clone(),
            message: format!("connected to MongoDB {version_text} at {shown}"),
        },
        Err(e) if is_auth_failure(&e) => ConnectionTest {
            reachable: true,
            authenticated: false,
            server_version: version.clone(),
            message: format!(
                "{shown}: MongoDB {version_text} answers but refuses to list {}: {} — the server requires authentication: put user:password in the URL (a secret reference such as {{{{ secrets.mongo_password }}}}) and authSource if the user lives elsewhere, or grant the user read access",
                parts
                    .default_database
                    .as_deref()
                    .map_or("databases".to_owned(), |d| format!("the collections of `{d}`")),
                says(&e)
            ),
        },
        Err(e) => ConnectionTest {
            reachable: true,
            authenticated: false,
            server_version: version.clone(),
            message: format!("{shown}: MongoDB {version_text} answers but a test query failed: {}", says(&e)),
        },
    }
}

async fn list_collections(db: &Database) -> Result<Document, DriverError> {
    db.run_command(doc! {"listCollections": 1, "nameOnly": true, "authorizedCollections": true}).await
}

fn unreachable(message: String) -> ConnectionTest {
    ConnectionTest { reachable: false, authenticated: false, server_version: None, message }
}
