//! The SLO spec file: parsed without side effects into plain values, validated in one place.
//!
//! Every problem is reported as `FILE:LINE: path: what is wrong`, and all problems of a file are
//! reported together so one run fixes them all.
//!
//! ```yaml
//! service: payments-db
//! slos:
//!   - name: read-latency
//!     sli: read_latency_p99
//!     target: "< 40"
//!     window: 30d
//! burn_policies:
//!   - if_burn_rate: "> 2.0x"
//!     over: 1h
//!     action: freeze-deploys
//! alerting:
//!   profile: standard-30d
//! ```

use crate::budget::{format_number, Objective};
use crate::duration::Span;
use crate::locate::{LineMap, PathDisplay, Seg};
use crate::metrics;
use crate::profile::{Profile, Severity, WindowPair, BUILTIN_NAMES};
use crate::sli::{SliKind, Target};
use serde_norway::{Mapping, Value};
use std::fmt;
use std::path::Path;

/// A validated SLO spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub service: String,
    /// Extra label matchers applied to every metric the rules read (`selector: {server: db1:5432/app}`).
    pub selector: Vec<(String, String)>,
    pub slos: Vec<Slo>,
    pub burn_policies: Vec<BurnPolicy>,
    pub profile: Profile,
}

/// One service-level objective.
#[derive(Debug, Clone)]
pub struct Slo {
    pub name: String,
    pub kind: SliKind,
    pub target: Target,
    pub window: Span,
    pub objective: Objective,
    /// Events a window needs before its burn rate counts.
    pub min_events: u64,
    pub description: Option<String>,
    pub runbook_url: Option<String>,
}

/// What a burn policy asks for when it triggers (read by `pgdbre gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    FreezeDeploys,
    FreezeMigrations,
    Notify,
}

const ACTIONS: [(&str, Action); 3] = [
    ("freeze-deploys", Action::FreezeDeploys),
    ("freeze-migrations", Action::FreezeMigrations),
    ("notify", Action::Notify),
];

impl Action {
    pub fn label(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(name, _)| *name)
            .expect("every action is listed")
    }
}

/// `if_burn_rate: "> 2.0x"` over a window, then an action.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnPolicy {
    pub threshold: f64,
    /// `>=` rather than `>`.
    pub inclusive: bool,
    pub over: Span,
    pub action: Action,
    /// The SLOs it applies to; empty means all.
    pub slos: Vec<String>,
}

/// Default `over:` of a burn policy.
pub const DEFAULT_POLICY_WINDOW: Span = Span::HOUR;

impl BurnPolicy {
    /// Whether a burn rate triggers this policy.
    pub fn triggers(&self, burn_rate: f64) -> bool {
        if self.inclusive {
            burn_rate >= self.threshold
        } else {
            burn_rate > self.threshold
        }
    }

    pub fn applies_to(&self, slo: &str) -> bool {
        self.slos.is_empty() || self.slos.iter().any(|s| s == slo)
    }

    /// `> 2x` / `>= 2x`.
    pub fn condition(&self) -> String {
        let op = if self.inclusive { ">=" } else { ">" };
        format!("{op} {}x", format_number(self.threshold))
    }
}

/// One problem in a spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub path: String,
    pub message: String,
}

/// A spec that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read SLO spec {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", render_problems(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

fn render_problems(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}:{}: {}: {}", p.line, p.path, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Spec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Spec::parse(&text, &path.display().to_string())
    }

    /// Parses and validates spec YAML; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
        let invalid = |problems| SpecError::Invalid {
            origin: origin.to_string(),
            problems,
        };
        let root: Value = serde_norway::from_str(text).map_err(|e| {
            invalid(vec![Problem {
                line: e.location().map(|l| l.line()).unwrap_or(1),
                path: "(document)".into(),
                message: format!("not valid YAML: {e}"),
            }])
        })?;
        let mut parser = Parser {
            lines: LineMap::new(text),
            problems: Vec::new(),
        };
        let spec = parser.spec(&root);
        match spec {
            Some(spec) if parser.problems.is_empty() => Ok(spec),
            _ => {
                let mut problems = parser.problems;
                problems.sort_by_key(|p| p.line);
                Err(invalid(problems))
            }
        }
    }

    pub fn slo(&self, name: &str) -> Option<&Slo> {
        self.slos.iter().find(|s| s.name == name)
    }
}

struct Parser {
    lines: LineMap,
    problems: Vec<Problem>,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn join(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut out = path.to_vec();
    out.push(seg);
    out
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Label values and SLO names end up inside PromQL strings and alert labels.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_label_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Parser {
    fn problem(&mut self, path: &[Seg], message: impl Into<String>) {
        self.problems.push(Problem {
            line: self.lines.line(path),
            path: PathDisplay(path).to_string(),
            message: message.into(),
        });
    }

    /// The mapping at `path`, with unknown keys reported.
    fn mapping<'v>(
        &mut self,
        value: &'v Value,
        path: &[Seg],
        allowed: &[&str],
    ) -> Option<&'v Mapping> {
        let Value::Mapping(map) = value else {
            self.problem(
                path,
                format!(
                    "expected a mapping with keys {}, found {}",
                    allowed.join(", "),
                    describe(value)
                ),
            );
            return None;
        };
        for k in map.keys() {
            let name = k.as_str().unwrap_or("");
            if !allowed.contains(&name) {
                let shown = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                self.problem(
                    &join(path, key(&shown)),
                    format!("unknown key; expected one of {}", allowed.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn required<'v>(&mut self, map: &'v Mapping, path: &[Seg], name: &str) -> Option<&'v Value> {
        match map.get(name) {
            Some(Value::Null) | None => {
                self.problem(path, format!("missing `{name}`"));
                None
            }
            Some(v) => Some(v),
        }
    }

    fn string(&mut self, value: &Value, path: &[Seg], what: &str) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.problem(path, format!("expected {what}, found {}", describe(other)));
                None
            }
        }
    }

    fn span(&mut self, value: &Value, path: &[Seg]) -> Option<Span> {
        let text = self.string(value, path, "a duration such as 30d, 1h or 5m")?;
        match text.parse::<Span>() {
            Ok(span) => Some(span),
            Err(e) => {
                self.problem(path, e.to_string());
                None
            }
        }
    }

    fn spec(&mut self, root: &Value) -> Option<Spec> {
        let allowed = ["service", "selector", "slos", "burn_policies", "alerting"];
        if root.is_null() {
            self.problem(&[], "the spec is empty; it needs `service` and `slos`");
            return None;
        }
        let map = self.mapping(root, &[], &allowed)?;
        let service = self
            .required(map, &[], "service")
            .and_then(|v| self.string(v, &[key("service")], "a service name"));
        if let Some(name) = &service {
            if !is_identifier(name) {
                self.problem(
                    &[key("service")],
                    format!("`{name}` is not a valid name; use letters, digits, `-`, `_` and `.`"),
                );
            }
        }
        let selector = match map.get("selector") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => self.selector(v),
        };
        let slos = match self.required(map, &[], "slos") {
            Some(Value::Sequence(items)) if !items.is_empty() => {
                let path = [key("slos")];
                let parsed: Vec<Option<Slo>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.slo(item, &join(&path, Seg::Index(i))))
                    .collect();
                self.check_duplicate_names(&parsed);
                parsed
            }
            Some(other) => {
                let found = describe(other);
                self.problem(
                    &[key("slos")],
                    format!("expected a non-empty list of SLOs, found {found}"),
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        let (profile, profile_path) = match map.get("alerting") {
            None | Some(Value::Null) => (None, vec![key("alerting")]),
            Some(v) => self.alerting(v),
        };
        let valid_slos: Vec<Slo> = slos.iter().flatten().cloned().collect();
        for (i, slo) in slos.iter().enumerate() {
            if let Some(slo) = slo {
                let chosen = profile
                    .clone()
                    .unwrap_or_else(|| Profile::default_for(slo.window));
                self.check_profile_fits(slo, &chosen, &[key("slos"), Seg::Index(i)], &profile_path);
            }
        }
        let burn_policies = match map.get("burn_policies") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    self.burn_policy(item, &[key("burn_policies"), Seg::Index(i)], &valid_slos)
                })
                .collect(),
            Some(other) => {
                let found = describe(other);
                self.problem(
                    &[key("burn_policies")],
                    format!("expected a list, found {found}"),
                );
                Vec::new()
            }
        };
        let service = service?;
        if !self.problems.is_empty() {
            return None;
        }
        let profile = match profile {
            Some(p) => p,
            None => Profile::default_for(valid_slos.first()?.window),
        };
        Some(Spec {
            service,
            selector,
            slos: valid_slos,
            burn_policies,
            profile,
        })
    }

    fn selector(&mut self, value: &Value) -> Vec<(String, String)> {
        let path = [key("selector")];
        let Value::Mapping(map) = value else {
            let found = describe(value);
            self.problem(
                &path,
                format!("expected a mapping of label to value, found {found}"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let name = k.as_str().unwrap_or_default().to_string();
            let at = join(&path, key(&name));
            if !is_label_name(&name) {
                self.problem(&at, format!("`{name}` is not a Prometheus label name"));
                continue;
            }
            if ["slo", "service", "le", "result", "probe"].contains(&name.as_str()) {
                self.problem(
                    &at,
                    format!("`{name}` is set by the rules themselves and cannot be selected on"),
                );
                continue;
            }
            match self.string(v, &at, "a label value") {
                Some(value) if value.contains(['"', '\\', '\n']) => {
                    self.problem(
                        &at,
                        "label values here may not contain quotes, backslashes or newlines",
                    );
                }
                Some(value) => out.push((name, value)),
                None => {}
            }
        }
        out
    }

    fn slo(&mut self, value: &Value, path: &[Seg]) -> Option<Slo> {
        let allowed = [
            "name",
            "sli",
            "target",
            "window",
            "objective",
            "min_events",
            "description",
            "runbook_url",
        ];
        let map = self.mapping(value, path, &allowed)?;
        let at = |k: &str| join(path, key(k));
        let name = self
            .required(map, path, "name")
            .and_then(|v| self.string(v, &at("name"), "a name"));
        if let Some(name) = &name {
            if !is_identifier(name) {
                self.problem(
                    &at("name"),
                    format!(
                        "`{name}` is not a valid SLO name; use letters, digits, `-`, `_` and `.`"
                    ),
                );
            }
        }
        let kind = self
            .required(map, path, "sli")
            .and_then(|v| self.string(v, &at("sli"), "an SLI kind"))
            .and_then(|text| match SliKind::parse(&text) {
                Ok(kind) => Some(kind),
                Err(message) => {
                    self.problem(&at("sli"), message);
                    None
                }
            });
        let target_text = match map.get("target") {
            Some(Value::Number(n)) => {
                self.problem(
                    &at("target"),
                    format!("`{n}` needs a comparison: write \"< {n}\" or \"<= {n}\" (quoted)"),
                );
                None
            }
            _ => self
                .required(map, path, "target")
                .and_then(|v| self.string(v, &at("target"), "a target such as \"< 40\"")),
        };
        let target = match (kind, target_text) {
            (Some(kind), Some(text)) => match Target::parse(kind, &text) {
                Ok(target) => Some(target),
                Err(message) => {
                    self.problem(&at("target"), message);
                    None
                }
            },
            _ => None,
        };
        if let (Some(SliKind::Latency { .. }), Some(target)) = (kind, &target) {
            self.check_bucket(target, &at("target"));
        }
        let window = self
            .required(map, path, "window")
            .and_then(|v| self.span(v, &at("window")));
        let explicit = match map.get("objective") {
            None | Some(Value::Null) => None,
            Some(v) => self.objective(v, &at("objective")),
        };
        let min_events = match map.get("min_events") {
            None | Some(Value::Null) => kind.map(SliKind::default_min_events),
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.problem(
                        &at("min_events"),
                        "expected a whole number of events (0 or more)",
                    );
                    None
                }
            },
        };
        let description = self.optional_string(map, &at("description"), "description");
        let runbook_url = self.optional_string(map, &at("runbook_url"), "runbook_url");
        let (kind, target) = (kind?, target?);
        let implied = kind.default_objective(&target);
        if let (SliKind::ErrorRate, Some(explicit)) = (kind, explicit) {
            if (explicit.percent() - implied).abs() > 1e-9 {
                self.problem(
                    &at("objective"),
                    format!(
                        "contradicts the target: an error rate {target} means an objective of {}%, not {explicit}; drop `objective` or change one of them",
                        format_number(implied)
                    ),
                );
                return None;
            }
        }
        let objective = match explicit {
            Some(o) => o,
            None => match Objective::new(implied) {
                Some(o) => o,
                None => {
                    self.problem(
                        &at("target"),
                        "this target leaves no room for an objective between 0 and 100%",
                    );
                    return None;
                }
            },
        };
        Some(Slo {
            name: name?,
            kind,
            target,
            window: window?,
            objective,
            min_events: min_events?,
            description,
            runbook_url,
        })
    }

    fn optional_string(&mut self, map: &Mapping, path: &[Seg], name: &str) -> Option<String> {
        match map.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => self.string(v, path, "text"),
        }
    }

    fn objective(&mut self, value: &Value, path: &[Seg]) -> Option<Objective> {
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
            _ => None,
        };
        let Some(number) = number else {
            self.problem(path, "expected a percentage such as 99.9");
            return None;
        };
        let objective = Objective::new(number);
        if objective.is_none() {
            self.problem(
                path,
                format!("{} is not an objective: it must be above 0 and below 100 (percent of good events)", format_number(number)),
            );
        }
        objective
    }

    fn check_bucket(&mut self, target: &Target, path: &[Seg]) {
        if metrics::bucket_bound(target.value).is_some() {
            return;
        }
        let ms = |s: f64| format!("{} ms", format_number(s * 1000.0));
        let nearest = match metrics::neighbouring_buckets(target.value) {
            (Some(below), Some(above)) => {
                format!("the nearest are {} and {}", ms(below), ms(above))
            }
            (Some(below), None) => format!("the largest is {}", ms(below)),
            (None, Some(above)) => format!("the smallest is {}", ms(above)),
            (None, None) => String::new(),
        };
        self.problem(
            path,
            format!(
                "{} is not a bucket bound of {}, so the share of probes within it cannot be counted; {nearest}",
                ms(target.value),
                metrics::PROBE_DURATION_SECONDS
            ),
        );
    }

    fn check_duplicate_names(&mut self, slos: &[Option<Slo>]) {
        for (i, slo) in slos.iter().enumerate() {
            let Some(slo) = slo else { continue };
            if let Some(first) = slos[..i]
                .iter()
                .position(|o| o.as_ref().is_some_and(|s| s.name == slo.name))
            {
                let first_line = self.lines.line(&[key("slos"), Seg::Index(first)]);
                self.problem(
                    &[key("slos"), Seg::Index(i), key("name")],
                    format!(
                        "duplicate SLO name `{}` (first defined on line {first_line})",
                        slo.name
                    ),
                );
            }
        }
    }

    fn alerting(&mut self, value: &Value) -> (Option<Profile>, Vec<Seg>) {
        let path = [key("alerting")];
        let Some(map) = self.mapping(value, &path, &["profile", "windows"]) else {
            return (None, path.to_vec());
        };
        match (map.get("profile"), map.get("windows")) {
            (Some(_), Some(_)) => {
                self.problem(
                    &join(&path, key("windows")),
                    "give either `profile` or `windows`, not both",
                );
                (None, path.to_vec())
            }
            (Some(name), None) => {
                let at = join(&path, key("profile"));
                let Some(name) = self.string(name, &at, "a profile name") else {
                    return (None, at);
                };
                match Profile::builtin(&name) {
                    Some(profile) => (Some(profile), at),
                    None => {
                        self.problem(
                            &at,
                            format!(
                                "unknown profile `{name}`; built-in profiles are {}, or list your own under `windows`",
                                BUILTIN_NAMES.join(", ")
                            ),
                        );
                        (None, at)
                    }
                }
            }
            (None, Some(Value::Sequence(items))) if !items.is_empty() => {
                let at = join(&path, key("windows"));
                let pairs: Vec<Option<WindowPair>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.window_pair(item, &join(&at, Seg::Index(i))))
                    .collect();
                let pairs: Option<Vec<WindowPair>> = pairs.into_iter().collect();
                (
                    pairs.map(|pairs| Profile {
                        name: "custom".into(),
                        pairs,
                    }),
                    at,
                )
            }
            (None, Some(_)) => {
                let at = join(&path, key("windows"));
                self.problem(&at, "expected a non-empty list of window pairs");
                (None, at)
            }
            (None, None) => (None, path.to_vec()),
        }
    }

    fn window_pair(&mut self, value: &Value, path: &[Seg]) -> Option<WindowPair> {
        let map = self.mapping(
            value,
            path,
            &["severity", "long", "short", "burn_rate", "for"],
        )?;
        let at = |k: &str| join(path, key(k));
        let severity = self
            .required(map, path, "severity")
            .and_then(|v| self.string(v, &at("severity"), "page or ticket"))
            .and_then(|s| {
                let parsed = Severity::parse(&s);
                if parsed.is_none() {
                    self.problem(
                        &at("severity"),
                        format!("unknown severity `{s}`; use page or ticket"),
                    );
                }
                parsed
            });
        let long = self
            .required(map, path, "long")
            .and_then(|v| self.span(v, &at("long")));
        let short = self
            .required(map, path, "short")
            .and_then(|v| self.span(v, &at("short")));
        let burn_rate = self.required(map, path, "burn_rate").and_then(|v| {
            let rate = v.as_f64().filter(|r| r.is_finite() && *r > 0.0);
            if rate.is_none() {
                self.problem(&at("burn_rate"), "expected a burn rate above 0, e.g. 14.4");
            }
            rate
        });
        let hold = match map.get("for") {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.span(v, &at("for"))?),
        };
        let (long, short) = (long?, short?);
        if short >= long {
            self.problem(
                &at("short"),
                format!("the short window ({short}) must be shorter than the long one ({long})"),
            );
            return None;
        }
        Some(WindowPair {
            severity: severity?,
            long,
            short,
            burn_rate: burn_rate?,
            hold,
        })
    }

    /// Alert windows must fit in the SLO window, and each pair must be able to fire.
    fn check_profile_fits(
        &mut self,
        slo: &Slo,
        profile: &Profile,
        slo_path: &[Seg],
        profile_path: &[Seg],
    ) {
        if slo.kind == SliKind::RestoreTime {
            // Drills are too rare for burn-rate windows; restore-time SLOs get their own alerts.
            return;
        }
        for pair in &profile.pairs {
            if pair.long > slo.window {
                self.problem(
                    &join(slo_path, key("window")),
                    format!(
                        "the SLO window {} is shorter than the {} alerting window of profile {}; lengthen the window or choose shorter alerting windows",
                        slo.window, pair.long, profile.name
                    ),
                );
                return;
            }
            if pair.burn_rate >= slo.objective.max_burn_rate() {
                self.problem(
                    profile_path,
                    format!(
                        "the {} {}/{} alert can never fire for SLO `{}`: at objective {} the burn rate is at most {}x, below its {}x",
                        pair.severity, pair.long, pair.short, slo.name, slo.objective,
                        format_number(slo.objective.max_burn_rate()), format_number(pair.burn_rate)
                    ),
                );
                return;
            }
        }
    }

    fn burn_policy(&mut self, value: &Value, path: &[Seg], slos: &[Slo]) -> Option<BurnPolicy> {
        let map = self.mapping(value, path, &["if_burn_rate", "over", "action", "slo"])?;
        let at = |k: &str| join(path, key(k));
        let condition = self
            .required(map, path, "if_burn_rate")
            .and_then(|v| self.string(v, &at("if_burn_rate"), "a condition such as \"> 2.0x\""))
            .and_then(|text| match parse_burn_condition(&text) {
                Ok(c) => Some(c),
                Err(message) => {
                    self.problem(&at("if_burn_rate"), message);
                    None
                }
            });
        let over = match map.get("over") {
            None | Some(Value::Null) => Some(DEFAULT_POLICY_WINDOW),
            Some(v) => self.span(v, &at("over")),
        };
        let action = self
            .required(map, path, "action")
            .and_then(|v| self.string(v, &at("action"), "an action"))
            .and_then(|text| {
                let found = ACTIONS
                    .iter()
                    .find(|(name, _)| *name == text)
                    .map(|(_, a)| *a);
                if found.is_none() {
                    let names: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
                    self.problem(
                        &at("action"),
                        format!("unknown action `{text}`; actions are {}", names.join(", ")),
                    );
                }
                found
            });
        let scope: Vec<String> = match map.get("slo") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(v) => self
                .string(v, &at("slo"), "an SLO name")
                .into_iter()
                .collect(),
        };
        for name in &scope {
            if !slos.iter().any(|s| &s.name == name) {
                self.problem(&at("slo"), format!("no SLO named `{name}` in this spec"));
            }
        }
        let ((threshold, inclusive), over, action) = (condition?, over?, action?);
        let policy = BurnPolicy {
            threshold,
            inclusive,
            over,
            action,
            slos: scope,
        };
        for slo in slos.iter().filter(|s| policy.applies_to(&s.name)) {
            let max = slo.objective.max_burn_rate();
            if !policy.triggers(max) {
                self.problem(
                    &at("if_burn_rate"),
                    format!(
                        "can never trigger for SLO `{}`: at objective {} the burn rate is at most {}x (every event bad)",
                        slo.name, slo.objective, format_number(max)
                    ),
                );
                return None;
            }
            if policy.over > slo.window {
                self.problem(
                    &at("over"),
                    format!(
                        "{} is longer than the {} window of SLO `{}`",
                        policy.over, slo.window, slo.name
                    ),
                );
                return None;
            }
        }
        Some(policy)
    }
}

/// `> 2.0x`, `>= 1x`, `> 2` → (threshold, inclusive).
pub fn parse_burn_condition(text: &str) -> Result<(f64, bool), String> {
    let trimmed = text.trim();
    let (inclusive, rest) = if let Some(rest) = trimmed.strip_prefix(">=") {
        (true, rest)
    } else if let Some(rest) = trimmed.strip_prefix('>') {
        (false, rest)
    } else {
        return Err(format!(
            "`{text}` is not a burn-rate condition; write e.g. \"> 2.0x\""
        ));
    };
    let number = rest.trim().trim_end_matches(['x', 'X']).trim();
    let threshold: f64 = number.parse().map_err(|_| {
        format!(
            "`{text}`: `{}` is not a number; write e.g. \"> 2.0x\"",
            rest.trim()
        )
    })?;
    if !threshold.is_finite() || threshold < 0.0 || (threshold == 0.0 && inclusive) {
        return Err(format!(
            "`{text}` can never be false: a burn rate is never negative; use a threshold above 0"
        ));
    }
    Ok((threshold, inclusive))
}

impl fmt::Display for Slo {
    /// The one-line summary `pgdbre slo validate` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let budget_share = format_number(self.objective.budget_ratio() * 100.0);
        let budget = if self.kind == SliKind::RestoreTime {
            format!(
                "budget {budget_share}% of DR drills (1 bad drill in {})",
                format_number(1.0 / self.objective.budget_ratio())
            )
        } else if self.kind.is_time_slice() {
            format!(
                "budget {} ({budget_share}% of minutes)",
                Span::human_secs(self.objective.budget_time(self.window))
            )
        } else {
            format!(
                "budget {budget_share}% of {}s ({} per 1000, or {} of total outage)",
                self.kind.event(),
                format_number(self.objective.budget_events(1000)),
                Span::human_secs(self.objective.budget_time(self.window)),
            )
        };
        write!(
            f,
            "{}: {} {}, objective {} over {}; {}",
            self.name, self.kind, self.target, self.objective, self.window, budget
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
service: payments-db
slos:
  - name: read-latency
    sli: read_latency_p99
    target: \"< 40\"
    window: 30d
  - name: errors
    sli: error_rate
    target: \"< 0.1\"
    window: 30d
  - name: lag
    sli: replica_lag
    target: \"<= 5\"
    window: 30d
  - name: restore
    sli: restore_time
    target: \"< 600\"
    window: 90d
burn_policies:
  - if_burn_rate: \"> 2.0x\"
    action: freeze-deploys
";

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(text, "slo.yaml")
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn replace(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn parses_the_example_with_defaults() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.service, "payments-db");
        assert_eq!(spec.profile.name, "standard-30d");
        let read = spec.slo("read-latency").unwrap();
        assert_eq!(read.objective.percent(), 99.0);
        assert_eq!(read.target.value, 0.04);
        assert_eq!(read.min_events, 100);
        assert!((spec.slo("errors").unwrap().objective.percent() - 99.9).abs() < 1e-9);
        assert_eq!(spec.slo("lag").unwrap().objective.percent(), 99.9);
        assert_eq!(spec.slo("restore").unwrap().objective.percent(), 90.0);
        let policy = &spec.burn_policies[0];
        assert_eq!((policy.threshold, policy.inclusive), (2.0, false));
        assert_eq!(policy.over.to_string(), "1h");
        assert_eq!(policy.action, Action::FreezeDeploys);
        assert!(policy.applies_to("lag"));
    }

    #[test]
    fn summary_lines() {
        let spec = parse(GOOD).unwrap();
        let lag = spec.slo("lag").unwrap().to_string();
        assert_eq!(
            lag,
            "lag: replica_lag <= 5 s, objective 99.9% over 30d; budget 43m12s (0.1% of minutes)"
        );
        let read = spec.slo("read-latency").unwrap().to_string();
        assert!(read.starts_with("read-latency: read_latency_p99 < 40 ms, objective 99% over 30d; budget 1% of read probes"), "{read}");
    }

    #[test]
    fn explicit_objective_overrides_the_percentile() {
        let spec = parse(&replace(
            "    window: 30d\n",
            "    window: 30d\n    objective: 99.5\n",
        ))
        .unwrap();
        assert_eq!(spec.slo("read-latency").unwrap().objective.percent(), 99.5);
    }

    #[test]
    fn unknown_sli_kind() {
        let e = error(&replace("read_latency_p99", "write_latency_p99"));
        assert!(
            e.starts_with("slo.yaml:4: slos[0].sli: unknown SLI kind `write_latency_p99`"),
            "{e}"
        );
    }

    #[test]
    fn unparsable_target() {
        let e = error(&replace("\"< 40\"", "\"< forty\""));
        assert!(
            e.starts_with("slo.yaml:5: slos[0].target: `< forty`"),
            "{e}"
        );
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn bare_number_target_needs_a_comparison() {
        let e = error(&replace("\"< 40\"", "40"));
        assert!(e.starts_with("slo.yaml:5: slos[0].target:"), "{e}");
        assert!(e.contains("needs a comparison"), "{e}");
    }

    #[test]
    fn latency_target_must_be_a_bucket_bound() {
        let e = error(&replace("\"< 40\"", "\"< 45\""));
        assert!(
            e.starts_with("slo.yaml:5: slos[0].target: 45 ms is not a bucket bound"),
            "{e}"
        );
        assert!(e.contains("the nearest are 40 ms and 50 ms"), "{e}");
        let e = error(&replace("\"< 40\"", "\"< 10s\""));
        assert!(e.contains("the largest is 5000 ms"), "{e}");
    }

    #[test]
    fn window_not_a_duration() {
        let e = error(&replace("window: 30d", "window: monthly"));
        assert!(
            e.starts_with("slo.yaml:6: slos[0].window: `monthly` is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn objective_out_of_range() {
        for bad in ["100", "0", "-5", "150", "\"99.9x\""] {
            let e = error(&replace(
                "    window: 30d\n",
                &format!("    window: 30d\n    objective: {bad}\n"),
            ));
            assert!(
                e.starts_with("slo.yaml:7: slos[0].objective:"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn error_rate_objective_contradiction() {
        let text = GOOD.replacen(
            "    target: \"< 0.1\"\n    window: 30d\n",
            "    target: \"< 0.1\"\n    window: 30d\n    objective: 99\n",
            1,
        );
        let e = error(&text);
        assert!(
            e.contains("slos[1].objective: contradicts the target"),
            "{e}"
        );
        let same = GOOD.replacen(
            "    target: \"< 0.1\"\n    window: 30d\n",
            "    target: \"< 0.1\"\n    window: 30d\n    objective: 99.9\n",
            1,
        );
        assert!(parse(&same).is_ok());
    }

    #[test]
    fn duplicate_names() {
        let e = error(&replace("name: errors", "name: read-latency"));
        assert!(e.starts_with("slo.yaml:7: slos[1].name: duplicate SLO name `read-latency` (first defined on line 3)"), "{e}");
    }

    #[test]
    fn burn_policy_that_can_never_trigger() {
        let text = replace("    window: 30d\n", "    window: 30d\n    objective: 50\n");
        let e = error(&text);
        assert!(
            e.contains("burn_policies[0].if_burn_rate: can never trigger for SLO `read-latency`"),
            "{e}"
        );
        // And the 14.4x page cannot fire at 50 % either.
        assert!(e.contains("can never fire"), "{e}");
    }

    #[test]
    fn burn_policy_problems() {
        let e = error(&replace("\"> 2.0x\"", "\"above 2\""));
        assert!(
            e.contains("burn_policies[0].if_burn_rate: `above 2` is not a burn-rate condition"),
            "{e}"
        );
        let e = error(&replace(
            "action: freeze-deploys",
            "action: freeze-everything",
        ));
        assert!(e.contains("unknown action `freeze-everything`"), "{e}");
        let e = error(&replace(
            "action: freeze-deploys",
            "action: freeze-deploys\n    over: 60d",
        ));
        assert!(
            e.contains("burn_policies[0].over: 60d is longer than the 30d window"),
            "{e}"
        );
        let e = error(&replace(
            "action: freeze-deploys",
            "action: freeze-deploys\n    slo: nope",
        ));
        assert!(e.contains("no SLO named `nope`"), "{e}");
        assert!(parse_burn_condition(">= 0x").is_err());
        assert!(parse_burn_condition("> -1x").is_err());
        assert_eq!(parse_burn_condition(">=1.5X").unwrap(), (1.5, true));
        assert_eq!(parse_burn_condition("> 2").unwrap(), (2.0, false));
    }

    #[test]
    fn unknown_profile() {
        let e = error(&format!("{GOOD}alerting:\n  profile: weekly\n"));
        assert!(e.starts_with("slo.yaml:"), "{e}");
        assert!(e.contains("alerting.profile: unknown profile `weekly`; built-in profiles are standard-30d, 28d"), "{e}");
    }

    #[test]
    fn window_shorter_than_alerting_windows() {
        let e = error(&replace("window: 30d", "window: 1d"));
        assert!(
            e.contains("slos[0].window: the SLO window 1d is shorter than the 3d alerting window"),
            "{e}"
        );
    }

    #[test]
    fn custom_windows() {
        let text = format!(
            "{GOOD}alerting:\n  windows:\n    - severity: page\n      long: 1h\n      short: 5m\n      burn_rate: 10\n      for: 1m\n    - {{severity: ticket, long: 6h, short: 30m, burn_rate: 2}}\n"
        );
        let spec = parse(&text).unwrap();
        assert_eq!(spec.profile.name, "custom");
        assert_eq!(spec.profile.pairs.len(), 2);
        assert_eq!(spec.profile.pairs[1].hold, None);
        let bad = text.replace("short: 5m", "short: 2h");
        let e = error(&bad);
        assert!(
            e.contains("alerting.windows[0].short: the short window (2h) must be shorter"),
            "{e}"
        );
        let both = format!("{GOOD}alerting:\n  profile: 28d\n  windows: []\n");
        assert!(error(&both).contains("either `profile` or `windows`"));
    }

    #[test]
    fn unknown_keys_and_missing_fields() {
        let e = error(&replace(
            "    window: 30d\n",
            "    window: 30d\n    targett: 1\n",
        ));
        assert!(e.contains("slos[0].targett: unknown key"), "{e}");
        let e = error("service: x\nslos:\n  - name: a\n    sli: error_rate\n");
        assert!(e.contains("slo.yaml:3: slos[0]: missing `target`"), "{e}");
        assert!(e.contains("missing `window`"), "{e}");
        let e = error("slos: []\n");
        assert!(e.contains("missing `service`"), "{e}");
        assert!(e.contains("expected a non-empty list of SLOs"), "{e}");
    }

    #[test]
    fn malformed_yaml_names_line() {
        let e = error("service: x\nslos:\n  - name: [a,\n");
        assert!(e.starts_with("slo.yaml:"), "{e}");
        assert!(e.contains("not valid YAML"), "{e}");
        assert!(error("").contains("the spec is empty"));
    }

    #[test]
    fn reports_all_problems_sorted_by_line() {
        let text = replace("read_latency_p99", "nope")
            .replace("window: 30d\n  - name: lag", "window: 3x\n  - name: lag");
        let e = error(&text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 2, "{e}");
        assert!(lines[0].starts_with("slo.yaml:4:"), "{e}");
        assert!(lines[1].starts_with("slo.yaml:10:"), "{e}");
    }

    #[test]
    fn selector_labels() {
        let spec = parse(&format!("selector:\n  server: db1\n{GOOD}")).unwrap();
        assert_eq!(
            spec.selector,
            vec![("server".to_string(), "db1".to_string())]
        );
        let e = error(&format!("selector:\n  le: x\n{GOOD}"));
        assert!(e.contains("slo.yaml:2: selector.le:"), "{e}");
    }
}
