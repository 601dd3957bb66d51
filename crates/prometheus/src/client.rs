//! A small client for Prometheus's instant-query API: one query, one number.

use reqwest::Url;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// How long one query may take before Prometheus counts as unreachable.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why Prometheus gave no number. Every message names the URL without its credentials.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "`{url}` is not a Prometheus URL ({reason}); hint: pass its base URL, e.g. \
         --prometheus http://localhost:9090"
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach Prometheus at {url} ({cause}); hint: check that Prometheus is running and \
         the URL is right, or read the state store with --store instead"
    )]
    Unreachable { url: String, cause: String },
    #[error("Prometheus at {url} answered HTTP {status}: {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    #[error("Prometheus at {url} rejected the query `{query}`: {message}")]
    Query {
        url: String,
        query: String,
        message: String,
    },
    #[error("Prometheus at {url} gave an unexpected answer to `{query}`: {message}")]
    Response {
        url: String,
        query: String,
        message: String,
    },
}

/// A Prometheus server, by the base URL of its HTTP API.
#[derive(Debug)]
pub struct Prometheus {
    /// `…/api/v1/query` under the base URL (may hold credentials: never printed).
    query_url: Url,
    /// The base URL without credentials, for messages.
    shown: String,
    http: reqwest::blocking::Client,
}

/// `text` with any `user:password@` of a URL replaced by `***@`; for URLs that do not parse too.
fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..scheme_end + 3], &rest[at..]),
        None => text.to_string(),
    }
}

impl Prometheus {
    /// A client for the Prometheus at `base` (`http[s]://[user:password@]host:port[/prefix]`);
    /// credentials in the URL are sent as basic auth.
    pub fn new(base: &str) -> Result<Prometheus, PrometheusError> {
        let shown = redact_url(base.trim_end_matches('/'));
        let bad = |reason: &str| PrometheusError::BadUrl {
            url: shown.clone(),
            reason: reason.to_string(),
        };
        let mut url = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a base URL has no query or fragment"));
        }
        // A path prefix (Prometheus behind a proxy at /prometheus) is kept.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let query_url = url.join("api/v1/query").map_err(|e| bad(&e.to_string()))?;
        // reqwest is built without a bundled crypto provider: use ring, as the rest of pgdbre.
        // An already installed provider is fine, hence the ignored result.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| bad(&error_chain(&e)))?;
        Ok(Prometheus {
            query_url,
            shown,
            http,
        })
    }

    /// The base URL without credentials.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Evaluates `query` at `at` and sums the samples of the result: `None` when it has none
    /// (no series matched, or only NaN), so absence stays distinguishable from zero.
    pub fn query(&self, query: &str, at: SystemTime) -> Result<Option<f64>, PrometheusError> {
        let time = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        tracing::debug!(url = %self.shown, query, time, "prometheus instant query");
        let mut url = self.query_url.clone();
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("time", &format!("{time:.3}"));
        let response = self
            .http
            .get(url)
            .send()
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = response.text().map_err(|e| self.unreachable(&e))?;
        let parsed: Result<ApiResponse, _> = serde_json::from_str(&body);
        match parsed {
            Ok(ApiResponse {
                status: ApiStatus::Error,
                error,
                error_type,
                ..
            }) => Err(PrometheusError::Query {
                url: self.shown.clone(),
                query: query.to_string(),
                message: match (error_type, error) {
                    (Some(kind), Some(message)) => format!("{kind}: {message}"),
                    (_, Some(message)) => message,
                    _ => "no error message".into(),
                },
            }),
            _ if !status.is_success() => Err(PrometheusError::Http {
                url: self.shown.clone(),
                status: status.as_u16(),
                message: first_line(&body),
            }),
            Ok(ApiResponse {
                data: Some(data), ..
            }) => self.sum(query, data),
            Ok(_) => Err(self.unexpected(query, "no data in a success answer".into())),
            Err(error) => Err(self.unexpected(
                query,
                format!("not the query API's JSON ({error}): {}", first_line(&body)),
            )),
        }
    }

    fn sum(&self, query: &str, data: QueryData) -> Result<Option<f64>, PrometheusError> {
        let values: Vec<&str> = match data.result_type.as_str() {
            "vector" => data
                .result
                .as_array()
                .map(|samples| {
                    samples
                        .iter()
                        .filter_map(|s| s["value"][1].as_str())
                        .collect()
                })
                .unwrap_or_default(),
            "scalar" => data.result[1].as_str().into_iter().collect(),
            other => {
                return Err(self.unexpected(
                    query,
                    format!("a {other} result where an instant vector was expected"),
                ))
            }
        };
        let mut sum = None;
        for value in values {
            let number: f64 = value
                .parse()
                .map_err(|_| self.unexpected(query, format!("`{value}` is not a number")))?;
            // 0/0 and friends: no usable sample rather than a poisoned sum.
            if number.is_finite() {
                *sum.get_or_insert(0.0) += number;
            }
        }
        Ok(sum)
    }

    fn unreachable(&self, error: &reqwest::Error) -> PrometheusError {
        let cause = if error.is_timeout() {
            format!("no answer within {}s", QUERY_TIMEOUT.as_secs())
        } else {
            error_chain(error)
        };
        PrometheusError::Unreachable {
            url: self.shown.clone(),
            cause,
        }
    }

    fn unexpected(&self, query: &str, message: String) -> PrometheusError {
        PrometheusError::Response {
            url: self.shown.clone(),
            query: query.to_string(),
            message,
        }
    }
}

/// The innermost causes of a reqwest error, without the request URL reqwest puts in its own
/// message (it would show credentials).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    // The deepest cause is the most specific ("Connection refused (os error 111)").
    causes
        .last()
        .cloned()
        .unwrap_or_else(|| "request failed".into())
}

fn first_line(body: &str) -> String {
    let line = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut line: String = line.trim().chars().take(200).collect();
    if line.is_empty() {
        line = "(empty body)".into();
    }
    line
}

/// The envelope of every query API answer.
#[derive(Deserialize)]
struct ApiResponse {
    status: ApiStatus,
    data: Option<QueryData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum ApiStatus {
    Success,
    Error,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_and_keeps_the_rest() {
        assert_eq!(
            redact_url("https://alice:s3cret@prom.example:9090/prom"),
            "https://***@prom.example:9090/prom"
        );
        assert_eq!(redact_url("http://tok@h/x?a=b@c"), "http://***@h/x?a=b@c");
        assert_eq!(redact_url("http://h:9090"), "http://h:9090");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn bad_urls_are_one_sentence_without_secrets() {
        for (url, why) in [
            ("ftp://u:pw@h/", "scheme"),
            ("http://u:pw@", "host"),
            ("localhost:9090", "scheme"),
            ("http://h:9090/?x=1", "query"),
        ] {
            let error = Prometheus::new(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
            assert!(error.contains("hint:"), "{error}");
            assert!(!error.contains("pw"), "{error}");
        }
    }

    #[test]
    fn keeps_a_path_prefix() {
        let prometheus = Prometheus::new("http://u:pw@h:9090/prom").unwrap();
        assert_eq!(
            prometheus.query_url.as_str(),
            "http://u:pw@h:9090/prom/api/v1/query"
        );
        assert_eq!(prometheus.url(), "http://***@h:9090/prom");
    }

    fn sum_of(json: &str) -> Result<Option<f64>, PrometheusError> {
        let prometheus = Prometheus::new("http://h:9090").unwrap();
        let data: QueryData = serde_json::from_str(json).unwrap();
        prometheus.sum("q", data)
    }

    #[test]
    fn sums_vectors_and_scalars_and_keeps_absence() {
        let vector = r#"{"resultType":"vector","result":[
            {"metric":{},"value":[1700000000.1,"41.5"]},
            {"metric":{"a":"b"},"value":[1700000000.1,"0.5"]}]}"#;
        assert_eq!(sum_of(vector).unwrap(), Some(42.0));
        let empty = r#"{"resultType":"vector","result":[]}"#;
        assert_eq!(sum_of(empty).unwrap(), None);
        let nan = r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}"#;
        assert_eq!(sum_of(nan).unwrap(), None);
        let scalar = r#"{"resultType":"scalar","result":[1,"3"]}"#;
        assert_eq!(sum_of(scalar).unwrap(), Some(3.0));
        let matrix = r#"{"resultType":"matrix","result":[]}"#;
        assert!(sum_of(matrix).unwrap_err().to_string().contains("matrix"));
    }
}
