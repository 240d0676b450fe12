//! Serde helper for every duration in a config file (`#[serde(with = "duration")]`): a
//! human-readable string, `"30s"`, `"500ms"`, `"10min"`, `"1h 30m"` (the `humantime` syntax, as
//! reth and Lighthouse configs write durations). A bare number is refused: its unit would be a
//! guess. Written back in the same syntax, so `config --print-default` round-trips.

use std::time::Duration;

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// Writes the duration as a humantime string (`"1m 30s"`, `"500ms"`, `"0s"`).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// Reads a humantime string into a duration; anything else is an error naming the syntax.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d).map_err(|_| {
        D::Error::custom("expected a duration string with a unit, e.g. \"30s\" or \"500ms\"")
    })?;
    parse(&text).map_err(D::Error::custom)
}

/// Parses `"30s"`, `"500ms"`, `"2m 30s"`; the error says what was wrong and what is
/// expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. \"30s\" or \"500ms\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Holder {
        #[serde(with = "super")]
        d: Duration,
    }

    fn read(toml_text: &str) -> Result<Duration, String> {
        toml::from_str::<Holder>(toml_text)
            .map(|h| h.d)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn units_are_read() {
        assert_eq!(read(r#"d = "30s""#), Ok(Duration::from_secs(30)));
        assert_eq!(read(r#"d = "500ms""#), Ok(Duration::from_millis(500)));
        assert_eq!(read(r#"d = "2m 30s""#), Ok(Duration::from_secs(150)));
        assert_eq!(read(r#"d = "10min""#), Ok(Duration::from_secs(600)));
        assert_eq!(read(r#"d = "0s""#), Ok(Duration::ZERO));
    }

    #[test]
    fn a_bare_number_or_junk_is_refused_with_the_syntax() {
        let bare = read("d = 500").unwrap_err();
        assert!(bare.contains("30s"), "{bare}");
        let junk = read(r#"d = "soon""#).unwrap_err();
        assert!(junk.contains("soon") && junk.contains("500ms"), "{junk}");
        assert!(read(r#"d = "5""#).is_err(), "a unitless string is refused");
    }

    #[test]
    fn written_form_reads_back() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_millis(10_500),
            Duration::from_secs(3_600),
        ] {
            let text = toml::to_string(&Holder { d }).unwrap();
            assert_eq!(toml::from_str::<Holder>(&text).unwrap().d, d, "{text}");
        }
        let text = toml::to_string(&Holder {
            d: Duration::from_millis(1_500),
        })
        .unwrap();
        assert!(text.contains(r#""1s 500ms""#), "{text}");
    }
}
