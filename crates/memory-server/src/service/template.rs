//! Contextual text: what is embedded and keyword-indexed for a memory, built
//! from a per-namespace template such as `{user_id} ({created_at:date}): {text}`,
//! so that who said something and when become searchable.
//!
//! Placeholders: `{text}`, `{namespace}`, `{agent_id}`, `{user_id}`,
//! `{session_id}`, `{kind}`, `{tags}` (comma-separated), `{created_at}`
//! (RFC 3339), `{created_at:date}` (`YYYY-MM-DD`), `{created_at:human}`
//! (`8 May 2023`, the form people write in questions) and `{metadata.KEY}`
//! (a top-level metadata value: strings as they are, other scalars as JSON).
//! Missing values render empty; `{{` and `}}` are literal braces.
//!
//! `{?...}` is an optional group: literal text and placeholders that render
//! only when every placeholder in the group renders something, so
//! `{?{metadata.speaker} ({created_at:human}): }{text}` dates and names the
//! turns that have a speaker and leaves other memories as they are.
//!
//! `{previous_turn}` brings the conversation in (see `conversation.rs`): a
//! line break and the text of the turn before this one in its session,
//! keyword-indexed with the memory. It is left out of the embedded text;
//! instead the turn's vector takes a share of the turn before's vector. It
//! renders nothing for a memory without a session or for a first turn.
//!
//! A template may also be given by name ([`NAMED`]): `chat` is for
//! conversation turns stored one per memory, with the speaker in
//! `metadata.speaker` and the time the turn was said in `created_at`; a
//! memory without a speaker renders as `turns` would render it.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Templates that can be given by name instead of written out.
pub const NAMED: &[(&str, &str)] = &[
    ("plain", "{text}"),
    ("turns", "{text}{previous_turn}"),
    (
        "chat",
        "{?{metadata.speaker} ({created_at:human}): }{text}{previous_turn}",
    ),
];

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Text,
    Namespace,
    Agent,
    User,
    Session,
    Kind,
    Tags,
    Created,
    CreatedDate,
    CreatedHuman,
    Metadata(String),
    PreviousTurn,
    /// `{?...}`: rendered only when every placeholder in it renders something.
    Group(Vec<Part>),
}

/// A parsed, valid template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a template is rendered from.
pub struct Fields<'a> {
    /// The memory's text.
    pub text: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Author agent.
    pub agent_id: Option<&'a str>,
    /// The user it is about.
    pub user_id: Option<&'a str>,
    /// Its session.
    pub session_id: Option<&'a str>,
    /// Its kind.
    pub kind: &'a str,
    /// Its tags.
    pub tags: &'a [String],
    /// Its metadata.
    pub metadata: &'a Map<String, Value>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// The text of the turn before, where the template asks for it and
    /// there is one; `None` renders the text that is embedded.
    pub previous_turn: Option<&'a str>,
}

impl Template {
    /// Parses `source`; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<Self, String> {
        if let Some((name, written)) = NAMED.iter().find(|(name, _)| *name == source) {
            let mut template = Self::parse_written(written)?;
            template.source = (*name).to_owned();
            return Ok(template);
        }
        Self::parse_written(source)
    }

    /// The template written out as `{placeholder}`s and literal text.
    pub fn expanded(&self) -> &str {
        NAMED
            .iter()
            .find(|(name, _)| *name == self.source)
            .map_or(&self.source, |(_, written)| written)
    }

    fn parse_written(source: &str) -> Result<Self, String> {
        let mut chars = source.chars().peekable();
        let parts = Self::parse_parts(&mut chars, false)?;
        if !parts.contains(&Part::Text) {
            return Err("the template must contain `{text}` (outside any `{?...}` group)".into());
        }
        if parts
            .iter()
            .position(|p| *p == Part::PreviousTurn)
            .is_some_and(|i| i + 1 != parts.len())
        {
            return Err("`{previous_turn}` must come last".into());
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The parts up to the end of the template, or, `in_group`, up to and
    /// including the `}` that closes a `{?...}` group.
    fn parse_parts(
        chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
        in_group: bool,
    ) -> Result<Vec<Part>, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' if in_group => {
                    closed = true;
                    break;
                }
                '}' => return Err("a lone `}` (write `}}` for a literal brace)".into()),
                '{' => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    if chars.peek() == Some(&'?') {
                        chars.next();
                        if in_group {
                            return Err("`{?...}` groups do not nest".into());
                        }
                        let group = Self::parse_parts(chars, true)?;
                        if let Some(bad) = group
                            .iter()
                            .find(|p| matches!(p, Part::Text | Part::PreviousTurn))
                        {
                            let name = if *bad == Part::Text {
                                "text"
                            } else {
                                "previous_turn"
                            };
                            return Err(format!(
                                "`{{{name}}}` cannot be inside a `{{?...}}` group"
                            ));
                        }
                        parts.push(Part::Group(group));
                        continue;
                    }
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("`{{{name}` is not closed")),
                        }
                    }
                    parts.push(Self::placeholder(&name)?);
                }
                c => literal.push(c),
            }
        }
        if in_group && !closed {
            return Err("a `{?` group is not closed".into());
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(parts)
    }

    fn placeholder(name: &str) -> Result<Part, String> {
        Ok(match name {
            "text" => Part::Text,
            "namespace" => Part::Namespace,
            "agent_id" => Part::Agent,
            "user_id" => Part::User,
            "session_id" => Part::Session,
            "kind" => Part::Kind,
            "tags" => Part::Tags,
            "created_at" => Part::Created,
            "created_at:date" => Part::CreatedDate,
            "created_at:human" => Part::CreatedHuman,
            "previous_turn" => Part::PreviousTurn,
            _ => match name.strip_prefix("metadata.") {
                Some(key) if !key.is_empty() => Part::Metadata(key.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown placeholder `{{{name}}}`; use text, namespace, agent_id, \
                         user_id, session_id, kind, tags, created_at, created_at:date, \
                         created_at:human, previous_turn or metadata.KEY (or a named \
                         template: plain, turns, chat)"
                    ));
                }
            },
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is just `{text}`.
    pub fn is_plain(&self) -> bool {
        self.parts == [Part::Text]
    }

    /// Whether the template brings in the turn before (`{previous_turn}`).
    pub fn wants_previous_turn(&self) -> bool {
        self.parts.contains(&Part::PreviousTurn)
    }

    /// The contextual text of a memory.
    pub fn render(&self, f: &Fields<'_>) -> String {
        let mut out = String::with_capacity(f.text.len() + 32);
        for part in &self.parts {
            match part {
                Part::Group(group) => {
                    let start = out.len();
                    let mut whole = true;
                    for part in group {
                        let before = out.len();
                        render_part(part, f, &mut out);
                        whole &= matches!(part, Part::Literal(_)) || out.len() > before;
                    }
                    if !whole {
                        out.truncate(start);
                    }
                }
                part => render_part(part, f, &mut out),
            }
        }
        out
    }
}

/// Appends what one part (not a group) renders to `out`.
fn render_part(part: &Part, f: &Fields<'_>, out: &mut String) {
    match part {
        Part::Literal(s) => out.push_str(s),
        Part::Text => out.push_str(f.text),
        Part::Namespace => out.push_str(f.namespace),
        Part::Agent => out.push_str(f.agent_id.unwrap_or("")),
        Part::User => out.push_str(f.user_id.unwrap_or("")),
        Part::Session => out.push_str(f.session_id.unwrap_or("")),
        Part::Kind => out.push_str(f.kind),
        Part::Tags => out.push_str(&f.tags.join(", ")),
        Part::Created => {
            if let Ok(s) = f.created_at.format(&Rfc3339) {
                out.push_str(&s);
            }
        }
        Part::CreatedDate => {
            if let Ok(s) = f
                .created_at
                .format(format_description!("[year]-[month]-[day]"))
            {
                out.push_str(&s);
            }
        }
        Part::CreatedHuman => {
            if let Ok(s) = f.created_at.format(format_description!(
                "[day padding:none] [month repr:long] [year]"
            )) {
                out.push_str(&s);
            }
        }
        Part::Metadata(key) => match f.metadata.get(key) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
            _ => {}
        },
        Part::PreviousTurn => {
            if let Some(t) = f.previous_turn.filter(|t| !t.is_empty()) {
                out.push('\n');
                out.push_str(t);
            }
        }
        // Groups do not nest: the parser refuses one inside another.
        Part::Group(_) => {}
    }
}

impl Default for Template {
    fn default() -> Self {
        Self {
            source: "{text}".into(),
            parts: vec![Part::Text],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fields<'a>(tags: &'a [String], metadata: &'a Map<String, Value>) -> Fields<'a> {
        Fields {
            text: "prefers window seats",
            namespace: "travel",
            agent_id: Some("planner"),
            user_id: Some("alice"),
            session_id: None,
            kind: "semantic",
            tags,
            metadata,
            created_at: datetime!(2026-03-04 05:06:07 UTC),
            previous_turn: None,
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let tags = vec!["flights".to_owned(), "seats".to_owned()];
        let mut metadata = Map::new();
        metadata.insert("city".into(), Value::String("Oslo".into()));
        metadata.insert("score".into(), Value::from(3));
        metadata.insert("nested".into(), serde_json::json!({"a": 1}));
        let t = Template::parse(
            "{{{user_id}}} ({created_at:date}, {created_at}) [{tags}] {kind}/{namespace}/\
             {agent_id}/{session_id} {metadata.city} {metadata.score}{metadata.nested}\
             {metadata.missing}: {text}",
        )
        .unwrap();
        assert_eq!(
            t.render(&fields(&tags, &metadata)),
            "{alice} (2026-03-04, 2026-03-04T05:06:07Z) [flights, seats] semantic/travel/\
             planner/ Oslo 3: prefers window seats"
        );
        assert!(!t.is_plain());
        assert!(Template::default().is_plain());
        assert_eq!(
            Template::default().render(&fields(&tags, &metadata)),
            "prefers window seats"
        );
    }

    #[test]
    fn the_chat_template_by_name_dates_turns_as_people_write_dates() {
        let mut metadata = Map::new();
        metadata.insert("speaker".into(), Value::String("Caroline".into()));
        let t = Template::parse("chat").unwrap();
        assert_eq!(t.source(), "chat");
        assert_eq!(
            t.expanded(),
            "{?{metadata.speaker} ({created_at:human}): }{text}{previous_turn}"
        );
        assert_eq!(
            t.render(&fields(&[], &metadata)),
            "Caroline (4 March 2026): prefers window seats"
        );
        assert!(Template::parse("plain").unwrap().is_plain());
        // A memory without a speaker is not a chat turn: it renders as `turns`.
        let none = Map::new();
        let turns = Template::parse("turns").unwrap();
        let mut f = fields(&[], &none);
        f.previous_turn = Some("Where do you sit?");
        assert_eq!(t.render(&f), turns.render(&f));
        assert_eq!(t.render(&f), "prefers window seats\nWhere do you sit?");
    }

    #[test]
    fn a_group_renders_only_when_each_of_its_placeholders_does() {
        let mut metadata = Map::new();
        metadata.insert("city".into(), Value::String("Oslo".into()));
        metadata.insert("empty".into(), Value::String(String::new()));
        let t = Template::parse(
            "{?[{metadata.city}] }{?{metadata.city}/{metadata.missing} }{?{{{metadata.empty}}} }\
             {?{user_id} on {created_at:date}: }{? always }{text}",
        )
        .unwrap();
        assert_eq!(
            t.render(&fields(&[], &metadata)),
            "[Oslo] alice on 2026-03-04:  always prefers window seats"
        );
    }

    #[test]
    fn the_turn_before_is_a_line_of_its_own_and_nothing_without_one() {
        let metadata = Map::new();
        let t = Template::parse("turns").unwrap();
        assert!(t.wants_previous_turn());
        assert!(!Template::parse("plain").unwrap().wants_previous_turn());
        let mut f = fields(&[], &metadata);
        assert_eq!(t.render(&f), "prefers window seats");
        f.previous_turn = Some("");
        assert_eq!(t.render(&f), "prefers window seats");
        f.previous_turn = Some("Where do you like to sit?");
        assert_eq!(
            t.render(&f),
            "prefers window seats\nWhere do you like to sit?"
        );
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (bad, says) in [
            ("{user_id}", "must contain `{text}`"),
            ("{text} {nope}", "unknown placeholder `{nope}`"),
            ("{text} {metadata.}", "unknown placeholder"),
            ("{text", "not closed"),
            ("{text} }", "lone `}`"),
            ("{?{user_id} {text}", "not closed"),
            ("{?{text}: }", "`{text}` cannot be inside"),
            (
                "{?{previous_turn}}{text}",
                "`{previous_turn}` cannot be inside",
            ),
            ("{?a{?b}}{text}", "do not nest"),
            ("{?{nope}}{text}", "unknown placeholder `{nope}`"),
            ("{?{user_id}}", "must contain `{text}`"),
            ("{previous_turn}{text}", "must come last"),
        ] {
            let e = Template::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
