//! `Name`: an event type or source, 1..64 chars of `[a-z0-9_.:-]`.

use std::fmt;

/// A validated event type or source name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 64;

    /// Checks the character set and length; the error is the reason shown to the client.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(format!("must be 1 to {} characters, got {}", Self::MAX_LEN, value.len()));
        }
        if let Some(bad) = value.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | ':' | '-')) {
            return Err(format!("may only contain a-z, 0-9, '_', '.', ':' and '-', found {bad:?}"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert!(Name::parse("checkout.error:v2-x_1").is_ok());
    }

    #[test]
    fn rejects_upper_case_empty_and_long_names() {
        assert!(Name::parse("PageView").is_err());
        assert!(Name::parse("").is_err());
        assert!(Name::parse("a".repeat(65)).is_err());
    }
}
