//! Shared helpers of the integration tests: vector loading and case counts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Loads `vectors/<relative>` as JSON.
pub fn load<T: DeserializeOwned>(relative: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The bytes of the hex string `object[name]`.
pub fn hex_field(object: &Value, name: &str) -> Vec<u8> {
    let text = object[name]
        .as_str()
        .unwrap_or_else(|| panic!("field {name} is not a string"));
    hex::decode(text).unwrap_or_else(|e| panic!("field {name} is not hex: {e}"))
}

/// Cases run and skipped, per suite label, for one vector file.
#[derive(Default)]
pub struct Counts {
    ran: BTreeMap<String, usize>,
    skipped: BTreeMap<String, usize>,
}

impl Counts {
    pub fn ran(&mut self, suite: &str) {
        *self.ran.entry(suite.to_owned()).or_default() += 1;
    }

    pub fn skip(&mut self, suite: &str) {
        *self.skipped.entry(suite.to_owned()).or_default() += 1;
    }

    /// How many cases ran under suite labels containing `pattern`.
    pub fn ran_matching(&self, pattern: &str) -> usize {
        self.ran
            .iter()
            .filter(|(suite, _)| suite.contains(pattern))
            .map(|(_, n)| n)
            .sum()
    }

    /// Prints the counts and fails if no case ran.
    pub fn report_and_check(&self, file: &str) {
        for (suite, n) in &self.ran {
            println!("{file}: {suite}: {n} cases ran");
        }
        for (suite, n) in &self.skipped {
            println!("{file}: {suite}: {n} cases skipped");
        }
        let total: usize = self.ran.values().sum();
        let skipped: usize = self.skipped.values().sum();
        println!("{file}: {total} cases ran, {skipped} skipped");
        assert!(total > 0, "{file}: no case ran");
    }
}
pub mod member;
pub mod sqlite_json;
