//! Templates in string params (`{{ vars.x }}`, `{{ env.X }}`, `{{ execution.id }}`), rendered once
//! per execution with minijinja before the node is built. Undefined names are errors.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// Values templates can see.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub vars: BTreeMap<String, serde_json::Value>,
    pub env: BTreeMap<String, String>,
    pub execution: ExecutionVars,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecutionVars {
    pub id: String,
    pub correlation_id: String,
    pub flow: String,
}

impl TemplateContext {
    pub fn new(
        vars: BTreeMap<String, serde_json::Value>,
        execution_id: &str,
        correlation_id: &str,
        flow: &str,
    ) -> Self {
        Self {
            vars,
            env: std::env::vars().collect(),
            execution: ExecutionVars {
                id: execution_id.to_owned(),
                correlation_id: correlation_id.to_owned(),
                flow: flow.to_owned(),
            },
        }
    }
}

/// A template that failed, with the param (JSON pointer) it sits in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("params{param}: template error: {message}")]
pub struct TemplateError {
    pub param: String,
    pub message: String,
}

/// Renders every string in `params` that contains a template.
pub fn render_params(
    params: &serde_json::Value,
    ctx: &TemplateContext,
) -> Result<serde_json::Value, TemplateError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let ctx = minijinja::Value::from_serialize(ctx);
    let mut out = params.clone();
    render_in(&mut out, &env, &ctx, &mut String::new())?;
    Ok(out)
}

fn render_in(
    v: &mut serde_json::Value,
    env: &Environment<'_>,
    ctx: &minijinja::Value,
    path: &mut String,
) -> Result<(), TemplateError> {
    match v {
        serde_json::Value::String(s) if s.contains("{{") || s.contains("{%") => {
            *s = env
                .render_str(s, ctx)
                .map_err(|e| TemplateError { param: path.clone(), message: e.to_string() })?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                render_in(item, env, ctx, path)?;
                path.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                render_in(item, env, ctx, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> TemplateContext {
        let mut vars = BTreeMap::new();
        vars.insert("table".to_owned(), json!("users"));
        TemplateContext::new(vars, "exec-1", "corr-1", "demo")
    }

    #[test]
    fn renders_vars_execution_and_env_in_nested_strings() {
        // PATH is set in every test environment.
        let params = json!({"a": "{{ vars.table }}_{{ execution.id }}", "b": [{"c": "{{ \"yes\" if env.PATH else \"no\" }}"}], "n": 5});
        let out = render_params(&params, &ctx()).expect("renders");
        assert_eq!(out, json!({"a": "users_exec-1", "b": [{"c": "yes"}], "n": 5}));
    }

    #[test]
    fn undefined_variable_names_the_param() {
        let err = render_params(&json!({"q": [ "{{ vars.nope }}" ]}), &ctx()).expect_err("undefined");
        assert_eq!(err.param, "/q/0");
    }
}
