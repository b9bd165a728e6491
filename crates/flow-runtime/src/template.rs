//! Templates in string params (`{{ vars.x }}`, `{{ env.X }}`, `{{ execution.id }}`), rendered once
//! per execution with minijinja before nodes are built. Undefined names are errors.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};

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

/// The template context of one execution.
#[derive(Debug)]
pub struct Templates {
    ctx: Value,
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
        let ctx = minijinja::context! {
            vars => Value::from_serialize(&vars),
            env => Value::from_object(ProcessEnv),
            execution => minijinja::context! {
                id => execution_id,
                correlation_id => correlation_id,
                flow => flow,
            },
        };
        Self { ctx }
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
}
