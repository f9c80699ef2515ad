//! How the command line reports: an error once with its causes, and output into a pipe whose
//! reader left (`wasmadm phase list | head`) as the end of the output rather than a failure.

/// The error and its causes, `outer: inner`, without repeating a cause that the message above it
/// already quotes (many messages include their source's text, and `{:#}` would print it twice).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// True when the error is a write to a pipe nobody reads any more.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to stdout; an error (a closed pipe included) is returned, not a panic as with
/// `print!`.
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("phase x: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let inner = std::io::Error::other("digest differs");
        let e = anyhow::Error::new(Quoting { source: inner });
        assert_eq!(error_text(&e), "phase x: digest differs");
    }

    #[test]
    fn a_new_cause_is_appended() {
        let e = anyhow::Error::new(std::io::Error::other("no such file")).context("cannot read a.yaml");
        assert_eq!(error_text(&e), "cannot read a.yaml: no such file");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("listing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
