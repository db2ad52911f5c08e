//! SDK errors as one line a person can act on: the service's own code and message when it
//! answered, otherwise what stood in the way of an answer (no connection, no name, no answer in
//! time, TLS), naming the endpoint. Never a `Debug` dump.

use std::error::Error as StdError;

use aws_sdk_s3::error::SdkError;

/// Why a request got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request never got an answer: connection refused or reset, no such host, TLS, a
    /// timeout. Worth retrying later; nothing the user's settings say is wrong, except maybe
    /// the endpoint.
    Unreachable(String),
    /// The request could not be made or the answer could not be read.
    Other(String),
}

/// Collapses whitespace and newlines, so a message is one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The Display text of every error in a chain, outermost first, without the generic wrappers
/// that say nothing ("dispatch failure", "io error", "other") and without repeats.
pub fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let text = one_line(&e.to_string());
        let generic = matches!(
            text.as_str(),
            "" | "dispatch failure"
                | "io error"
                | "other"
                | "connector error"
                | "failed to construct request"
                | "response error"
                | "timeout"
                | "service error"
                | "unhandled error"
        );
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A plain-words reading of the deepest cause, for the errors users meet most.
fn plain(text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    let table: &[(&str, &'static str)] = &[
        ("connection refused", "connection refused"),
        ("failed to lookup address", "the host name does not resolve"),
        (
            "name or service not known",
            "the host name does not resolve",
        ),
        ("no such host", "the host name does not resolve"),
        ("dns error", "the host name does not resolve"),
        ("connection reset", "the connection was reset"),
        ("broken pipe", "the connection was closed"),
        (
            "invalid peer certificate",
            "the TLS certificate was not accepted",
        ),
        // Before the generic TLS rows: rustls says "TLS handshake failed: received corrupt
        // message of type InvalidContentType" when the server speaks plain http.
        (
            "invalidcontenttype",
            "the TLS handshake failed (is it an https:// URL for a plain http server?)",
        ),
        ("certificate", "TLS failed"),
        ("tls handshake", "TLS failed"),
        ("timed out", "no answer in time"),
        ("timeout", "no answer in time"),
        ("network is unreachable", "the network is unreachable"),
    ];
    table.iter().find(|(k, _)| t.contains(k)).map(|(_, v)| *v)
}

/// What went wrong with a request that got no service answer, naming where it went.
pub fn sdk_error_text<E, R>(err: &SdkError<E, R>, endpoint: &str) -> Failure
where
    E: StdError + 'static,
    R: std::fmt::Debug,
{
    let text = match err.source() {
        Some(source) => chain_text(source),
        None => one_line(&err.to_string()),
    };
    match err {
        SdkError::TimeoutError(_) => {
            Failure::Unreachable(format!("no answer from {endpoint} in time"))
        }
        SdkError::DispatchFailure(df) => {
            let why = plain(&text).map_or_else(|| text.clone(), str::to_string);
            if df.is_timeout() || df.is_io() || plain(&text).is_some() {
                Failure::Unreachable(format!("cannot reach {endpoint}: {why}"))
            } else {
                Failure::Other(format!("request to {endpoint} failed: {text}"))
            }
        }
        SdkError::ResponseError(_) => Failure::Unreachable(format!(
            "the answer from {endpoint} could not be read: {}",
            plain(&text).map_or_else(|| text.clone(), str::to_string)
        )),
        _ => Failure::Other(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for E {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn chains_read_as_one_line() {
        let e = E(
            "dispatch failure",
            Some(Box::new(E(
                "io error",
                Some(Box::new(E(
                    "client error (Connect)",
                    Some(Box::new(E(
                        "tcp connect error: Connection refused\n(os error 111)",
                        None,
                    ))),
                ))),
            ))),
        );
        let text = chain_text(&e);
        assert_eq!(
            text,
            "client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(plain(&text), Some("connection refused"));
        assert!(!text.contains('{'));
    }
}
