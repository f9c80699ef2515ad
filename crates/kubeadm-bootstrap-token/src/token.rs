//! The token itself: `<id>.<secret>`, 6 and 16 characters of `[a-z0-9]`.

use crate::Error;
use std::fmt;

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A bootstrap token. The ID is public (it names the Secret); the secret half is a credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token {
    pub id: String,
    pub secret: String,
}

fn valid_part(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// True for a token ID (`[a-z0-9]{6}`).
pub fn is_valid_id(s: &str) -> bool {
    valid_part(s, ID_LEN)
}

/// True for a token secret (`[a-z0-9]{16}`).
pub fn is_valid_secret(s: &str) -> bool {
    valid_part(s, SECRET_LEN)
}

impl Token {
    /// Parses `id.secret`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.split_once('.') {
            Some((id, secret)) if is_valid_id(id) && is_valid_secret(secret) => Ok(Self {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            _ => Err(Error::InvalidToken(text.to_string())),
        }
    }

    /// A new random token, each character drawn uniformly from `[0-9a-z]` (as kubeadm's
    /// `GenerateBootstrapToken`), from the operating system's random source.
    pub fn generate() -> Result<Self, Error> {
        let text = random_chars(ID_LEN + SECRET_LEN)?;
        let (id, secret) = text.split_at(ID_LEN);
        Ok(Self {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// `system:bootstrap:<id>`, the user name the API server authenticates the token as.
    pub fn user_name(&self) -> String {
        format!("system:bootstrap:{}", self.id)
    }
}

impl std::str::FromStr for Token {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

/// The secret half never appears in debug output or logs.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.<redacted>)", self.id)
    }
}

/// The token ID of `text`, which is either an ID or a whole token (`wasmadm token delete`).
pub fn parse_id_or_token(text: &str) -> Result<String, Error> {
    if is_valid_id(text) {
        return Ok(text.to_string());
    }
    Token::parse(text)
        .map(|t| t.id)
        .map_err(|_| Error::InvalidIdOrToken(text.to_string()))
}

/// `n` characters of [`ALPHABET`], without modulo bias: bytes of 252 and above (7 * 36) are
/// drawn again.
fn random_chars(n: usize) -> Result<String, Error> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
        for &b in buf.iter().filter(|&&b| b < 252) {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[usize::from(b % 36)] as char);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_tokens_and_rejects_the_rest() {
        let t = Token::parse("abcdef.0123456789abcdef").expect("valid");
        assert_eq!((t.id.as_str(), t.secret.as_str()), ("abcdef", "0123456789abcdef"));
        assert_eq!(t.to_string(), "abcdef.0123456789abcdef");
        assert_eq!(t.user_name(), "system:bootstrap:abcdef");
        for bad in [
            "",
            "abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef0",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdefg",
            "abcdef:0123456789abcdef",
            "abcdef.0123456789abcdef.",
            "abcdef.01234567-9abcdef",
        ] {
            let err = Token::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("[a-z0-9]{6}.[a-z0-9]{16}"), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let t = Token::parse("abcdef.0123456789abcdef").expect("valid");
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn generated_tokens_have_the_format_and_differ() {
        let tokens: Vec<Token> = (0..50).map(|_| Token::generate().expect("random")).collect();
        for t in &tokens {
            assert_eq!(Token::parse(&t.to_string()).as_ref(), Ok(t));
        }
        let distinct: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len());
    }

    #[test]
    fn generated_characters_cover_the_whole_alphabet() {
        let text = random_chars(36 * 200).expect("random");
        for c in ALPHABET {
            assert!(text.as_bytes().contains(c), "{} never drawn", *c as char);
        }
    }

    #[test]
    fn ids_or_tokens() {
        assert_eq!(parse_id_or_token("abcdef").as_deref(), Ok("abcdef"));
        assert_eq!(
            parse_id_or_token("abcdef.0123456789abcdef").as_deref(),
            Ok("abcdef")
        );
        let err = parse_id_or_token("abc").expect_err("bad").to_string();
        assert!(err.contains("\"abc\"") && err.contains("[a-z0-9]{6}"), "{err}");
    }
}
