//! The JSON Schemas of `docs/schemas/`, compiled once per test binary, and the checks of a
//! document against them — one definition for every test file that validates output.

// The schemas are files of the repository, read directly.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

pub const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schemas");

/// Resolves the schemas' relative `$ref`s (`common.schema.json#/...`) to the files beside
/// them, and nothing else: no network, no file outside `docs/schemas/`.
struct Beside;

impl Retrieve for Beside {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.path().as_str().trim_start_matches('/');
        if uri.scheme().as_str() != "json-schema" || name.contains('/') {
            return Err(format!("refusing to retrieve {uri}").into());
        }
        Ok(read(name))
    }
}

/// Returns the file `docs/schemas/<name>` as JSON.
pub fn read(name: &str) -> Value {
    let path = Path::new(SCHEMAS).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Returns the compiled validator of `docs/schemas/<name>.schema.json` (formats checked).
pub fn validator(name: &str) -> Validator {
    let schema = read(&format!("{name}.schema.json"));
    jsonschema::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{name}.schema.json is not a valid JSON Schema: {e}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .with_retriever(Beside)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}.schema.json: {e}"))
}

/// Returns the errors of `doc` against schema `name`, one line each with where it is.
pub fn errors(name: &str, doc: &Value) -> Vec<String> {
    static CACHE: OnceLock<Mutex<Vec<(String, &'static Validator)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let v = {
        let mut c = cache.lock().unwrap();
        match c.iter().find(|(n, _)| n == name) {
            Some((_, v)) => *v,
            None => {
                let v: &'static Validator = Box::leak(Box::new(validator(name)));
                c.push((name.to_string(), v));
                v
            }
        }
    };
    v.iter_errors(doc)
        .map(|e| format!("at {}: {e}", e.instance_path))
        .collect()
}

/// Panics unless `doc` (`what`, for the message) is valid against schema `name`.
pub fn assert_valid(name: &str, doc: &Value, what: &str) {
    let errs = errors(name, doc);
    assert!(
        errs.is_empty(),
        "{what}: not valid against {name}.schema.json:\n{}\n{doc:#}",
        errs.join("\n")
    );
}
