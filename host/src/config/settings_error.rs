//! A plugin's settings error at the pipeline file's line. A plugin reads its `settings:` as JSON
//! text (one line), so serde's message ends with `at line 1 column N` of that text; the host knows
//! which key sits there and finds the same key in the pipeline's YAML, where the operator wrote
//! it.

use super::pipeline::Pipeline;
use crate::command::Command;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The text a pipeline was parsed from, for positions in later messages.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub path: PathBuf,
    pub text: Arc<str>,
    /// The text holds the settings themselves (`plugin run --settings FILE`), not a pipeline.
    pub settings_only: bool,
}

/// A step into a YAML or JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Pipeline {
    /// `message` (a plugin's `invalid-config`) with its JSON position replaced by the pipeline
    /// file's `path:line:column` of the settings key it is about; `None` when it names no position
    /// in the settings, or the pipeline has no source text.
    pub fn settings_error(&self, command: Command, phase: &str, message: &str) -> Option<String> {
        let source = self.source.as_ref()?;
        let (index, spec) = self
            .phases(command)
            .iter()
            .enumerate()
            .find(|(_, p)| p.name.0 == phase)?;
        let (text, column) = message.rsplit_once(" at line 1 column ")?;
        let column: usize = column.parse().ok()?;
        // Only messages about the settings: the configuration is one line of JSON too.
        if !text.contains("settings") {
            return None;
        }
        let mut path = match source.settings_only {
            true => vec![],
            false => vec![
                Seg::Key(command.to_string()),
                Seg::Index(index),
                Seg::Key("settings".into()),
            ],
        };
        path.extend(json_path_at(&spec.settings.to_string(), column));
        let (line, column) = yaml_key_location(&source.text, &path)?;
        Some(format!("{}:{line}:{column}: {text}", source.path.display()))
    }
}

/// The keys and indexes leading to what ends at byte `offset` of the JSON text `json` (serde
/// reports an unknown key just after it, a wrong value just after the value).
pub fn json_path_at(json: &str, offset: usize) -> Vec<Seg> {
    enum Frame {
        Object { key: Option<String> },
        Array { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len().min(offset) {
        match bytes[i] {
            b'{' => stack.push(Frame::Object { key: None }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key }) => *key = None,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key: key @ None }) = stack.last_mut() {
                    let raw = &json[start..i.min(json.len())];
                    *key = Some(serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_else(|_| raw.into()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack
        .into_iter()
        .filter_map(|f| match f {
            Frame::Object { key } => key.map(Seg::Key),
            Frame::Array { index } => Some(Seg::Index(index)),
        })
        .collect()
}

/// The 1-based line and column of the key (or sequence item) at `path` in the YAML `text`: the
/// deepest step found, so a key that is not there points at its parent.
pub fn yaml_key_location(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let error = Find(path)
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    if !error.to_string().contains(FOUND) {
        return None;
    }
    error.location().map(|l| (l.line(), l.column()))
}

/// The marker error that stops the walk where the key is (serde_yaml gives it the position).
const FOUND: &str = "settings key found";

/// Walks to `path`, then fails there.
struct Find<'a>(&'a [Seg]);

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Find<'_> {
    /// The end of the walk fails inside the value's own event, which gives it its position.
    fn here<E: de::Error>(&self) -> Result<(), E> {
        match self.0 {
            [] => Err(E::custom(FOUND)),
            _ => Ok(()),
        }
    }
}

/// A mapping key: true when it is `want`; the walk's end when it is the last step.
struct Key<'a> {
    want: &'a str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v == self.want {
            true if self.last => Err(E::custom(FOUND)),
            found => Ok(found),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
}

impl<'de> Visitor<'de> for Find<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.here()?;
        let (Some(Seg::Key(want)), rest) = (self.0.first(), &self.0[1..]) else {
            return Ok(());
        };
        while let Some(found) = map.next_key_seed(Key {
            want,
            last: rest.is_empty(),
        })? {
            if found {
                return map.next_value_seed(Find(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.here()?;
        let (Some(Seg::Index(want)), rest) = (self.0.first(), &self.0[1..]) else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Find(rest)).map(|_| ())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "\
apiVersion: wasmadm.io/v1alpha1
kind: Pipeline
init:
  - name: first
    component: builtin:preflight
  - name: vendor-checks
    component: builtin:preflight
    settings:
      minKernel: 5
      nested:
        list: [a, 7]
reset:
  - name: vendor-checks
    component: builtin:preflight
    settings: { minKernel: 5 }
";

    fn keys(path: &[&str]) -> Vec<Seg> {
        path.iter().map(|k| Seg::Key(k.to_string())).collect()
    }

    #[test]
    fn a_json_position_is_the_key_or_value_it_follows() {
        let json = r#"{"minKernel":5,"nested":{"list":["a",7]}}"#;
        // serde_json: "unknown field `minKernel`" at column 12, just after the key.
        assert_eq!(json_path_at(json, 12), keys(&["minKernel"]));
        let after_seven = json.find('7').expect("7") + 1;
        let mut want = keys(&["nested", "list"]);
        want.push(Seg::Index(1));
        assert_eq!(json_path_at(json, after_seven), want);
    }

    #[test]
    fn a_settings_key_is_found_at_its_line_in_the_pipeline() {
        let at = |path: Vec<Seg>| yaml_key_location(PIPELINE, &path);
        let mut init = vec![Seg::Key("init".into()), Seg::Index(1)];
        init.extend(keys(&["settings", "minKernel"]));
        assert_eq!(at(init), Some((9, 7)));
        let mut reset = vec![Seg::Key("reset".into()), Seg::Index(0)];
        reset.extend(keys(&["settings", "minKernel"]));
        assert_eq!(at(reset), Some((15, 17)));
        let mut item = vec![Seg::Key("init".into()), Seg::Index(1)];
        item.extend(keys(&["settings", "nested", "list"]));
        item.push(Seg::Index(1));
        assert_eq!(at(item), Some((11, 19)));
        assert_eq!(at(keys(&["join", "x"])), None);
    }

    #[test]
    fn a_plugins_settings_error_names_the_pipeline_file_and_line() {
        let pipeline = Pipeline::parse(PIPELINE, std::path::Path::new("p.yaml")).expect("parse");
        let message = "settings of phase \"vendor-checks\": unknown field `minKernel`, expected \
                       `minKernelMajor` at line 1 column 12";
        // The message without serde's position, after the file's.
        let at = |place: &str| {
            format!(
                "{place}: settings of phase \"vendor-checks\": unknown field `minKernel`, expected \
                 `minKernelMajor`"
            )
        };
        let got = pipeline.settings_error(Command::Init, "vendor-checks", message);
        assert_eq!(got, Some(at("p.yaml:9:7")));
        let unset = "settings of phase \"first\": invalid type at line 1 column 4";
        assert_eq!(pipeline.settings_error(Command::Init, "first", unset), None);
        let config = "the configuration: unknown field `x` at line 1 column 12";
        assert_eq!(
            pipeline.settings_error(Command::Init, "vendor-checks", config),
            None
        );

        // A settings file given on the command line is its own document.
        let settings_file = Pipeline {
            source: Some(Source {
                path: "s.yaml".into(),
                text: "# a comment\nminKernel: 5\n".into(),
                settings_only: true,
            }),
            ..pipeline
        };
        let got = settings_file.settings_error(Command::Init, "vendor-checks", message);
        assert_eq!(got, Some(at("s.yaml:2:1")));
    }
}
