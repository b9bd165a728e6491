//! Templates in string params (`{{ vars.x }}`, `{{ env.X }}`, `{{ execution.id }}`,
//! `{{ secrets.name }}`), rendered once per execution with minijinja before nodes are built.
//! Undefined names are errors. Rendering is synchronous, so the secrets a node names are found
//! first (`secrets_in`), fetched by the executor, and added (`add_secret`) before its build.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};

use crate::secrets::{FetchedSecrets, PROVIDER_NAMESPACES, Redactor, SecretRef};

/// The template environment every execution renders with: it holds no template, only the
/// built-in filters and tests, whose set-up (dozens of map inserts) would otherwise be paid
/// by every execution, and every validation, again.
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
});

/// `env` in templates: the process environment, read when a template names a variable rather
/// than copied into every execution's context.
#[derive(Debug)]
struct ProcessEnv;

impl Object for ProcessEnv {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        std::env::var(key.as_str()?).ok().map(Value::from)
    }
}

/// What an execution's `secrets` object knows: the values fetched so far, and the references
/// looked up without a value.
#[derive(Debug, Default)]
struct SecretState {
    resolved: BTreeMap<SecretRef, String>,
    missing: BTreeSet<SecretRef>,
    /// Render a missing secret as a stand-in rather than fail (finding references, validation).
    stand_in: bool,
}

/// `secrets` in templates (`namespace: None`), and `secrets.vault`, `secrets.aws` under it.
#[derive(Debug)]
struct SecretValues {
    state: Arc<Mutex<SecretState>>,
    namespace: Option<&'static str>,
}

/// What a missing secret renders as while references are being found or a flow validated.
const STAND_IN: &str = "secret-not-fetched";

impl Object for SecretValues {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let reference = match self.namespace {
            None => {
                if let Some(namespace) = PROVIDER_NAMESPACES.iter().find(|n| **n == key) {
                    return Some(Value::from_object(SecretValues {
                        state: Arc::clone(&self.state),
                        namespace: Some(namespace),
                    }));
                }
                SecretRef::local(key)
            }
            Some(provider) => SecretRef { provider: provider.into(), key: key.into() },
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = state.resolved.get(&reference) {
            return Some(Value::from(value.as_str()));
        }
        let stand_in = state.stand_in;
        state.missing.insert(reference);
        stand_in.then(|| Value::from(STAND_IN))
    }
}

/// The template context of one execution.
#[derive(Debug)]
pub struct Templates {
    ctx: Value,
    secrets: Arc<Mutex<SecretState>>,
}

/// A template that failed, with the param (JSON pointer) it sits in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("params{param}: template error: {message}")]
pub struct TemplateError {
    pub param: String,
    pub message: String,
}

impl Templates {
    pub fn new(
        vars: BTreeMap<String, serde_json::Value>,
        execution_id: &str,
        correlation_id: &str,
        flow: &str,
    ) -> Self {
        let secrets = Arc::new(Mutex::new(SecretState::default()));
        let ctx = minijinja::context! {
            vars => Value::from_serialize(&vars),
            env => Value::from_object(ProcessEnv),
            secrets => Value::from_object(SecretValues { state: Arc::clone(&secrets), namespace: None }),
            execution => minijinja::context! {
                id => execution_id,
                correlation_id => correlation_id,
                flow => flow,
            },
        };
        Self { ctx, secrets }
    }

    /// Templates that render a secret not fetched as a stand-in instead of failing: for
    /// validation, which checks templates without contacting any provider.
    #[must_use]
    pub fn with_stand_ins(self) -> Self {
        self.secret_state().stand_in = true;
        self
    }

    fn secret_state(&self) -> std::sync::MutexGuard<'_, SecretState> {
        self.secrets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The secrets the strings of `value` name that have no value yet. Other template errors
    /// are left for the real render to report.
    pub fn secrets_in(&self, value: &serde_json::Value) -> BTreeSet<SecretRef> {
        let stand_in = {
            let mut state = self.secret_state();
            state.missing.clear();
            std::mem::replace(&mut state.stand_in, true)
        };
        let _ = self.render_params(value);
        let mut state = self.secret_state();
        state.stand_in = stand_in;
        std::mem::take(&mut state.missing)
    }

    /// The secrets fetched so far.
    pub fn fetched(&self) -> FetchedSecrets {
        FetchedSecrets(self.secret_state().resolved.clone())
    }

    /// Gives `reference` its value for the rest of the execution, and keeps the value out of
    /// every message from now on.
    pub fn add_secret(&self, reference: SecretRef, value: String) {
        Redactor::global().register(&value);
        self.secret_state().resolved.insert(reference, value);
    }

    /// Renders one string; text without template syntax is returned as is.
    pub fn render(&self, text: &str) -> Result<String, String> {
        if !(text.contains("{{") || text.contains("{%")) {
            return Ok(text.to_owned());
        }
        ENVIRONMENT.render_str(text, &self.ctx).map_err(|e| e.to_string())
    }

    /// Renders every string in `params` that contains a template.
    pub fn render_params(&self, params: &serde_json::Value) -> Result<serde_json::Value, TemplateError> {
        let mut out = params.clone();
        self.render_in(&mut out, &mut String::new())?;
        Ok(out)
    }

    fn render_in(&self, v: &mut serde_json::Value, path: &mut String) -> Result<(), TemplateError> {
        match v {
            serde_json::Value::String(s) => {
                let fail = |message: String| TemplateError { param: path.clone(), message };
                *v = match whole_expression(s) {
                    // A param that is one whole template keeps the type of its value
                    // (`"count": "{{ vars.rows }}"` with rows = 1000 gives a number).
                    Some(expr) => {
                        let value = ENVIRONMENT
                            .compile_expression(expr)
                            .and_then(|e| e.eval(&self.ctx))
                            .map_err(|e| fail(e.to_string()))?;
                        if value.is_undefined() {
                            return Err(fail(format!("undefined value: {expr}")));
                        }
                        serde_json::to_value(&value).map_err(|e| fail(e.to_string()))?
                    }
                    None => serde_json::Value::String(self.render(s).map_err(fail)?),
                };
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    self.render_in(item, path)?;
                    path.truncate(len);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(k);
                    self.render_in(item, path)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The expression of a string that is exactly one `{{ expression }}`.
fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates() -> Templates {
        let mut vars = BTreeMap::new();
        vars.insert("table".to_owned(), json!("users"));
        Templates::new(vars, "exec-1", "corr-1", "demo")
    }

    #[test]
    fn renders_vars_execution_and_env_in_nested_strings() {
        // PATH is set in every test environment.
        let params = json!({"a": "{{ vars.table }}_{{ execution.id }}", "b": [{"c": "{{ \"yes\" if env.PATH else \"no\" }}"}], "n": 5});
        let out = templates().render_params(&params).expect("renders");
        assert_eq!(out, json!({"a": "users_exec-1", "b": [{"c": "yes"}], "n": 5}));
    }

    #[test]
    fn a_whole_template_yields_numbers_and_bools() {
        let mut vars = BTreeMap::new();
        vars.insert("n".to_owned(), json!(42));
        vars.insert("on".to_owned(), json!(true));
        vars.insert("code".to_owned(), json!("007"));
        let t = Templates::new(vars, "e", "c", "f");
        let out = t.render_params(&json!({"a": "{{ vars.n }}", "b": "{{ vars.on }}", "c": "n={{ vars.n }}",
            "d": "{{ vars.n }}{{ vars.n }}", "e": "{{ vars.code }}", "f": "{{ vars.n * 2 }}"}));
        assert_eq!(
            out.expect("renders"),
            json!({"a": 42, "b": true, "c": "n=42", "d": "4242", "e": "007", "f": 84})
        );
    }

    #[test]
    fn env_variables_render_and_an_unset_one_is_an_error_naming_the_param() {
        let t = templates();
        let path = std::env::var("PATH").expect("PATH is set in every test environment");
        let out = t.render_params(&json!({"a": "{{ env.PATH }}"})).expect("renders");
        assert_eq!(out, json!({"a": path}));
        let err =
            t.render_params(&json!({"b": "x{{ env.FLOW_TEMPLATE_TEST_NEVER_SET }}"})).expect_err("unset");
        assert_eq!(err.param, "/b");
        assert!(err.message.contains("undefined"), "{}", err.message);
    }

    #[test]
    fn undefined_variable_names_the_param() {
        let err = templates().render_params(&json!({"q": [ "{{ vars.nope }}" ]})).expect_err("undefined");
        assert_eq!(err.param, "/q/0");
    }

    #[test]
    fn secrets_are_found_before_they_are_fetched_and_render_once_added() {
        let t = templates();
        let params = json!({"url": "postgres://u:{{ secrets.pg_password }}@h/{{ vars.table }}",
            "token": "{{ secrets.vault[\"db/creds#password\"] }}", "n": 1});
        let found: Vec<String> = t.secrets_in(&params).iter().map(ToString::to_string).collect();
        assert_eq!(found, ["secrets.pg_password", "secrets.vault[\"db/creds#password\"]"]);
        let err = t.render_params(&params).expect_err("not fetched yet");
        assert!(err.message.contains("undefined"), "{}", err.message);
        t.add_secret(SecretRef::local("pg_password"), "pw-1".into());
        t.add_secret(SecretRef { provider: "vault".into(), key: "db/creds#password".into() }, "v-2".into());
        assert!(t.secrets_in(&params).is_empty());
        let out = t.render_params(&params).expect("renders");
        assert_eq!(out, json!({"url": "postgres://u:pw-1@h/users", "token": "v-2", "n": 1}));
    }

    #[test]
    fn validation_renders_a_stand_in_for_secrets_not_fetched() {
        let t = templates().with_stand_ins();
        let out = t.render_params(&json!({"a": "{{ secrets.x }}"})).expect("renders");
        assert_eq!(out, json!({"a": STAND_IN}));
    }
}
