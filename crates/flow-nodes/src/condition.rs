//! A condition in the Filter node's expression language, judged on a record of named figures
//! rather than on a flow's records: what custom alert rules are written in, so users meet one
//! language (`failed > 3 && success_rate < 95`) everywhere.

use flow_model::Record;
use rhai::Scope;

use crate::script::{FieldExpression, Sandbox};

/// Operations one evaluation may take: a condition over a handful of figures needs few.
const MAX_OPERATIONS: u64 = 10_000;

/// A compiled condition.
pub struct Condition {
    sandbox: Sandbox,
    expression: FieldExpression,
}

impl Condition {
    /// Compiles `source`; the error is Rhai's message with the position.
    pub fn compile(source: &str) -> Result<Self, String> {
        let sandbox = Sandbox::new(MAX_OPERATIONS);
        let expression = FieldExpression::compile(&sandbox, "condition", source)
            // The message names the param as a node's (`params.condition`); here it is a field.
            .map_err(|e| e.message.trim_start_matches("params.").to_owned())?;
        Ok(Self { sandbox, expression })
    }

    /// Whether the condition holds for `figures`; an error for a name it does not know, a
    /// comparison of values of different kinds, or a result that is not a bool.
    pub fn holds(&self, figures: &Record) -> Result<bool, String> {
        let value = self.expression.eval(&self.sandbox, &mut Scope::new(), figures)?;
        value.as_bool().map_err(|t| format!("the condition gave {t}, not true or false"))
    }
}

#[cfg(test)]
mod tests {
    use flow_model::Value;

    use super::*;

    fn figures() -> Record {
        let mut r = Record::default();
        r.insert("failed", Value::Int(4));
        r.insert("success_rate", Value::Float(80.0));
        r
    }

    #[test]
    fn conditions_compare_integer_and_float_figures() {
        let holds = |source: &str| Condition::compile(source).expect("compiles").holds(&figures());
        assert_eq!(holds("failed > 3 && success_rate < 95"), Ok(true));
        assert_eq!(holds("failed > 3 && success_rate < 75.5"), Ok(false));
        assert_eq!(holds("failed >= 4 || missing_name > 1"), Ok(true));
    }

    #[test]
    fn bad_conditions_say_why() {
        let err = Condition::compile("failed >").err().expect("does not compile");
        assert!(err.starts_with("condition: "), "{err}");
        let unknown = Condition::compile("flaky > 1").expect("compiles").holds(&figures());
        assert!(unknown.is_err_and(|e| e.contains("flaky")));
        let not_bool = Condition::compile("failed + 1").expect("compiles").holds(&figures());
        assert!(not_bool.is_err_and(|e| e.contains("not true or false")));
    }
}
