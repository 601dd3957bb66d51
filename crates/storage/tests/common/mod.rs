//! Helpers shared by the integration tests: the location of a real `s3s-fs` server.

use pgdbre_lab::S3Server;
use pgdbre_storage::Location;
use std::collections::HashMap;

/// The location of `prefix` in the server's bucket, with the server's environment where
/// `overrides` replace (or, with an empty value, unset) single variables.
pub fn s3_location(server: &S3Server, prefix: &str, overrides: &[(&str, &str)]) -> Location {
    let mut env: HashMap<String, String> = server.env().into_iter().collect();
    for (name, value) in overrides {
        env.insert(name.to_string(), value.to_string());
    }
    Location::parse_with_env(&server.url(prefix), &|name| env.get(name).cloned())
        .expect("the lab server's location parses")
}
