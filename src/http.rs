//! The HTTP client the commands share — the queue-runner status poller and the binary-cache
//! reader: ureq over rustls, a User-Agent naming this tool and its version, error statuses read
//! and reported by us, every failure said in one line, and credentials in a URL never shown ([`crate::redact`]).

use std::time::Duration;

use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;

/// What every request says it is, so that a server's operators can tell us apart and reach us.
pub const USER_AGENT: &str = concat!("hydra-bottleneck/", env!("CARGO_PKG_VERSION"));

/// An agent's settings with the parts every use shares: the User-Agent (with `purpose` after
/// it, in parentheses) and error statuses returned as answers, to be read and reported by us
/// with their status line. Callers add their timeouts.
pub fn config(purpose: &str) -> ConfigBuilder<AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(format!("{USER_AGENT} ({purpose})"))
}

/// A failed request in a few words, for one line of an error. `limit` describes the size bound
/// of the answer, for when it is exceeded.
pub fn describe(e: &ureq::Error, timeout: Duration, limit: &str) -> String {
    match e {
        ureq::Error::Timeout(_) => format!(
            "no complete answer within {} (--timeout)",
            humantime(timeout)
        ),
        ureq::Error::BodyExceedsLimit(_) => format!("the answer is larger than {limit}"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the connection closed before the whole answer arrived (truncated)".into()
        }
        ureq::Error::HostNotFound => "the host name does not resolve".into(),
        other => one_line(&other.to_string()),
    }
}

/// `HTTP 503 Service Unavailable`.
pub fn status_line(status: ureq::http::StatusCode) -> String {
    format!(
        "HTTP {}{}",
        status.as_u16(),
        status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    )
}

/// Whitespace (newlines included) collapsed to single spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `1.5 s`, `30 s`, `250 ms`.
pub fn humantime(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(humantime(Duration::from_millis(250)), "250 ms");
        assert_eq!(humantime(Duration::from_secs(30)), "30 s");
        assert_eq!(humantime(Duration::from_millis(1500)), "1.5 s");
    }
}
