//! YAML as kubeadm writes it (Go's `sigs.k8s.io/yaml`: JSON, then go-yaml v2 block style).
//!
//! Byte-exact output matters: kubeadm hashes the `kubelet-config` ConfigMap data, and node files
//! are compared with real kubeadm's. The differences with `serde_yaml` are in quoting: go-yaml
//! double-quotes strings that would read back as another type (`"0"`, `""`, `"true"`), where
//! `serde_yaml` single-quotes them. Keys come out sorted because `serde_json` maps are sorted.

use serde_json::Value;

/// `value` (an object) as a YAML document, ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn mapping(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        out.push_str(&string(key));
        out.push(':');
        nested(out, value, level + 2, level);
    }
}

/// A value after `key:` or `- `: inline when scalar or empty, else on the following lines.
/// go-yaml v2 does not indent a sequence under its key.
fn nested(out: &mut String, value: &Value, map_level: usize, seq_level: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, map_level);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, a, seq_level);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn sequence(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first key shares the dash's line.
                let mut inner = String::new();
                mapping(&mut inner, m, level + 2);
                out.push(' ');
                out.push_str(&inner[level + 2..]);
            }
            other => nested(out, other, level + 2, level + 2),
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// A string the way yaml.v2 emits it: double quoted when it would read back as null, a bool or a
/// number (go-yaml's `stringv`), single quoted when the plain style is not allowed by the syntax
/// (libyaml's emitter analysis: a leading indicator, `: `, ` #`, a trailing `:`, outer spaces),
/// plain otherwise.
fn string(s: &str) -> String {
    if s.is_empty() || resolves_to_non_string(s) || s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        // A JSON string literal is a valid YAML double-quoted scalar.
        return serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""));
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

/// YAML 1.1 words go-yaml reads as booleans or null.
const RESERVED: [&str; 26] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
    "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
];

fn resolves_to_non_string(s: &str) -> bool {
    RESERVED.contains(&s) || looks_numeric(s)
}

/// Integers, floats (incl. `1e3`, `.5`, `.inf`, `.nan`) and sexagesimal numbers (`1:20`).
fn looks_numeric(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(body.to_ascii_lowercase().as_str(), ".inf" | ".nan") {
        return true;
    }
    if body.contains(':') {
        return is_base60(body);
    }
    let body = body.replace('_', "");
    if body.is_empty() {
        return false;
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    body.parse::<f64>().is_ok() && body.chars().all(|c| c.is_ascii_digit() || ".eE+-".contains(c))
}

/// go-yaml v2's `isBase60Float` (YAML 1.1 sexagesimal, quoted for other parsers' sake):
/// `[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`, sign already stripped. `10.200.0.2:6443` is not.
fn is_base60(body: &str) -> bool {
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let mut parts = whole.split(':');
    let head = parts.next().unwrap_or_default();
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let mut sixties = 0;
    let tail_ok = parts.all(|p| {
        sixties += 1;
        let digits = p.as_bytes();
        match digits {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        }
    });
    head_ok && sixties > 0 && tail_ok && fraction.chars().all(|c| c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::to_string;
    use serde_json::json;

    #[test]
    fn go_yaml_shapes() {
        let v = json!({
            "b": "0", "a": "", "c": {}, "d": [], "e": "unix:///run/x.sock", "f": 0, "g": "true",
            "h": "10.96.0.10", "i": ["x", {"k": 1, "j": "y"}], "l": {"m": {"v": false}}, "o": "a: b",
            "p": "0s", "q": "1.5", "r": "v1.36.2", "s": "node-role.kubernetes.io/control-plane"
        });
        assert_eq!(
            to_string(&v),
            "a: \"\"\nb: \"0\"\nc: {}\nd: []\ne: unix:///run/x.sock\nf: 0\ng: \"true\"\nh: 10.96.0.10\n\
             i:\n- x\n- j: \"y\"\n  k: 1\nl:\n  m:\n    v: false\no: 'a: b'\np: 0s\nq: \"1.5\"\nr: v1.36.2\n\
             s: node-role.kubernetes.io/control-plane\n"
        );
    }

    #[test]
    fn strings_quoted_as_yaml_v2_quotes_them() {
        use super::string;
        // libyaml treats the end of the string as blank: a trailing ':' is an indicator.
        assert_eq!(string("::"), "'::'");
        assert_eq!(string("::1"), "::1");
        assert_eq!(string("- x"), "'- x'");
        assert_eq!(string("true"), "\"true\"");
        assert_eq!(string("y"), "\"y\"");
        assert_eq!(string("0.0.0.0"), "0.0.0.0");
        assert_eq!(string("1:20"), "\"1:20\"");
        assert_eq!(string("-1_0:5:59.5"), "\"-1_0:5:59.5\"");
        // kubeadm-config's controlPlaneEndpoint, as kubeadm writes it (real kubeadm v1.36.2).
        assert_eq!(string("10.200.0.2:6443"), "10.200.0.2:6443");
        assert_eq!(string("1:60"), "1:60");
        assert_eq!(string("api.example.com:6443"), "api.example.com:6443");
        assert_eq!(string("0b101"), "\"0b101\"");
        assert_eq!(string("it's: x"), "'it''s: x'");
    }

    #[test]
    fn nested_sequences_under_keys_are_not_indented() {
        let v = json!({"a": {"b": ["x", "z"]}});
        assert_eq!(to_string(&v), "a:\n  b:\n  - x\n  - z\n");
    }
}
