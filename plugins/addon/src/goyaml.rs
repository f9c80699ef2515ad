//! YAML as Go's `sigs.k8s.io/yaml` writes it (keys sorted, two-space indent, sequences not
//! indented under their key, `""` for strings that would otherwise read as another type), so
//! that the kube-proxy `config.conf` — and the hash kubeadm annotates it with — match kubeadm's.

use serde_json::Value;

/// `value` (a mapping) as a YAML document with a trailing newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(map, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn mapping(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(key));
        out.push(':');
        entry(&map[key], indent, indent + 2, out);
    }
}

/// The value after `key:` (or `-`): inline for scalars and empty collections, else on the next
/// lines. Mappings nest by two spaces; sequences under a key stay at the key's indent.
fn entry(value: &Value, seq_indent: usize, map_indent: usize, out: &mut String) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(m, map_indent, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(a, seq_indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first key goes on the dash's line, the rest under it.
                let mut nested = String::new();
                mapping(m, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(nested.trim_start());
            }
            other => entry(other, indent + 2, indent + 2, out),
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string the way yaml.v2 emits it: plain when it reads back as the same string, double
/// quoted when it would read as null, a bool or a number, single quoted when it starts with an
/// indicator or holds `: ` / ` #`.
fn string(s: &str) -> String {
    if s.is_empty() || resolves_to_non_string(s) || s.contains('\n') {
        return format!("{s:?}");
    }
    let first = s.chars().next().unwrap_or(' ');
    let indicator = "-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !(matches!(first, '-' | '?' | ':') && s.len() > 1 && !s[1..].starts_with(' '));
    if indicator
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.starts_with(' ')
        || s.ends_with(' ')
    {
        return format!("'{}'", s.replace('\'', "''"));
    }
    s.to_string()
}

fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
        "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", ".inf", ".Inf", ".INF",
        "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let plain = s.replace('_', "");
    let digits = plain.trim_start_matches(['+', '-']);
    plain.parse::<f64>().is_ok() && !digits.starts_with(['i', 'I', 'n', 'N'])
        || digits
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        || digits
            .strip_prefix("0b")
            .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_style() {
        let v = json!({"b": {"x": "", "v": "0", "z": null, "w": "0s"}, "a": ["1.2.3.4/32"], "c": [], "d": [{"k": 1, "j": true}]});
        assert_eq!(
            to_string(&v),
            "a:\n- 1.2.3.4/32\nb:\n  v: \"0\"\n  w: 0s\n  x: \"\"\n  z: null\nc: []\nd:\n- j: true\n  k: 1\n"
        );
        // libyaml treats the end of the string as blank: a trailing ':' is an indicator.
        assert_eq!(string("::"), "'::'");
        assert_eq!(string("::1"), "::1");
        assert_eq!(string("- x"), "'- x'");
        assert_eq!(string("true"), "\"true\"");
        // YAML 1.1 booleans, as yaml.v2 reads them, are quoted even as keys.
        assert_eq!(string("y"), "\"y\"");
        assert_eq!(string("0.0.0.0"), "0.0.0.0");
    }
}
