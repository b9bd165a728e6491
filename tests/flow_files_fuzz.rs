//! Broken and mutated flow files fed to load + validate never panic: they load and validate, or
//! give an error naming the file.

use std::path::Path;

use proptest::prelude::*;

fn seeds() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("flows/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).expect("readable")).collect()
}

/// One edit of a flow file's text.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("]".to_string()),
        Just("null".to_string()),
        Just("\"version\": 2,".to_string()),
        Just("\"type\": \"nope\",".to_string()),
        Just("-1e999".to_string()),
        Just("\"\\ud800\"".to_string()),
        "[a-z{}\\[\\]\":,0-9 ]{0,12}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), token).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Mutation::Replace(a, c)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| if chars.is_empty() { 0 } else { i % (chars.len() + 1) };
    let mut out = chars.clone();
    match m {
        Mutation::Truncate(i) => out.truncate(at(*i)),
        Mutation::Delete(i, n) => {
            let start = at(*i);
            let end = (start + n).min(out.len());
            out.drain(start..end);
        }
        Mutation::Insert(i, s) => {
            let pos = at(*i);
            out.splice(pos..pos, s.chars());
        }
        Mutation::Replace(i, c) => {
            if !out.is_empty() {
                let pos = i % out.len();
                out[pos] = *c;
            }
        }
    }
    out.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_flow_files_never_panic(seed in 0usize..100, edits in prop::collection::vec(mutation(), 1..4)) {
        let seeds = seeds();
        let mut text = seeds[seed % seeds.len()].clone();
        for m in &edits {
            text = apply(&text, m);
        }
        let catalog = catalog();
        match flow_model::parse_flow(&text, Path::new("mutated.json")) {
            Ok(flow) => {
                let _ = catalog.validate(&flow);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("mutated.json"), "{}", e),
        }
    }

    #[test]
    fn arbitrary_json_values_never_panic(value in arbitrary_json()) {
        let text = value.to_string();
        let catalog = catalog();
        if let Ok(flow) = flow_model::parse_flow(&text, Path::new("random.json")) {
            let _ = catalog.validate(&flow);
        }
    }
}

/// The node catalog without an engine (proptest bodies are synchronous).
fn catalog() -> &'static flow_model::Catalog {
    static TYPES: std::sync::LazyLock<flow_runtime::NodeTypes> =
        std::sync::LazyLock::new(|| flow_runtime::NodeTypes::new(flow_nodes::catalog()).expect("catalog"));
    TYPES.catalog()
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "(version|nodes|edges|id|type|params|from|to|node|port|name|[a-z]{1,5})"
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                "(version|name|nodes|edges|id|type|params|from|to|node|port|settings)",
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
