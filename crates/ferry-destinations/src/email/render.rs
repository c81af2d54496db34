//! The subject and body templates (minijinja): checked when a destination
//! is created (syntax, variables), rendered per event with strict undefined
//! values and a fuel limit, so a template can neither guess silently nor
//! run away.

use std::collections::HashSet;

use ferry_core::FieldError;
use ferry_core::event::Event;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// What a template sees of an event.
const VARIABLES: [&str; 6] = ["id", "type", "timestamp", "org", "data", "metadata"];
/// Bound on the work of one rendering (loops over huge data stop here).
const FUEL: u64 = 200_000;

/// The two templates of a destination, compiled.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// Compiles both templates; an error per template that does not parse
    /// or that uses a variable no event has.
    pub fn new(subject: &str, body: &str) -> Result<Self, Vec<FieldError>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        // A body's last line break is the author's: keep it.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let globals: HashSet<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
        let mut errors = Vec::new();
        for (name, source) in [("subject", subject), ("body", body)] {
            let field = format!("config.{name}");
            if let Err(error) = env.add_template_owned(name, source.to_owned()) {
                errors.push(FieldError::new(
                    field,
                    format!("is not a valid template: {}", describe(&error)),
                ));
                continue;
            }
            let Ok(template) = env.get_template(name) else {
                continue;
            };
            let mut unknown: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !VARIABLES.contains(&v.as_str()) && !globals.contains(v))
                .collect();
            unknown.sort();
            if !unknown.is_empty() {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "uses unknown variables: {} (known: {})",
                        unknown.join(", "),
                        VARIABLES.join(", ")
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self { env })
        } else {
            Err(errors)
        }
    }

    /// The subject (on one line) and body for `event`. An error names the
    /// template and what failed, e.g. `config.subject: undefined value …`
    /// for a field the event's data lacks.
    pub fn render(&self, event: &Event) -> Result<(String, String), String> {
        let context = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({
            "id": event.id.as_str(),
            "type": event.event_type,
            "timestamp": event.created_at.to_rfc3339(),
            "org": event.org_id.as_str(),
            "data": event.data,
            "metadata": event.metadata,
        })));
        let render = |name: &str| {
            self.env
                .get_template(name)
                .and_then(|template| template.render(&context))
                .map_err(|error| format!("config.{name}: {}", describe(&error)))
        };
        let subject = render("subject")?;
        let body = render("body")?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok((subject, body))
    }
}

/// A template error with its detail and place, e.g. `undefined value:
/// data.missing is undefined (line 1)`.
fn describe(error: &minijinja::Error) -> String {
    let mut text = error.kind().to_string();
    if let Some(detail) = error.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}
