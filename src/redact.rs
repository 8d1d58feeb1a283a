//! Hiding the passwords in a `DATABASE_URL` wherever it is shown (`tessera check-config`, the
//! start-up line, start-up errors) or quoted back by the driver (libpq repeats a badly
//! percent-encoded value in its error, for one). Every form of a PostgreSQL URL password that
//! libpq accepts is covered: the userinfo password (`postgres://user:PASSWORD@host`) and the query
//! parameters `password` and `sslpassword`, also when their name is percent-encoded
//! (`pass%77ord=`), since libpq decodes names and values alike.
//!
//! A libpq key=value connection string (`host=db password=...`) is refused by
//! [`crate::config::DatabaseTarget::parse`] before it could be shown anywhere.

use percent_encoding::percent_decode_str;

/// Shown instead of a secret.
pub const MASK: &str = "***";

/// The libpq connection parameters whose value is a secret.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// Whether a query parameter name, as written, names a secret once percent-decoded. Compared
/// without regard to case or surrounding blanks: hiding too much is the safe mistake.
pub fn is_secret_parameter(raw_name: &str) -> bool {
    let name = percent_decode_str(raw_name).decode_utf8_lossy();
    SECRET_PARAMETERS
        .iter()
        .any(|secret| name.trim().eq_ignore_ascii_case(secret))
}

/// `raw` as it may be shown: the userinfo password, the value of every `password` and
/// `sslpassword` parameter and any fragment replaced by `***`. `None` if it is not a URL, or one
/// whose password cannot be replaced; show nothing of it then.
pub fn redact_url(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    if url.password().is_some() {
        url.set_password(Some(MASK)).ok()?;
    }
    if let Some(query) = url.query() {
        let masked = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_parameter(name) => format!("{name}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&masked));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(MASK));
    }
    Some(url.to_string())
}

/// Every password written in the URL `raw`, as written and percent-decoded, read from the text
/// itself (not a normalised parse), since that text is what the driver is given and may quote.
pub fn secrets_of(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut keep = |value: &str| {
        if value.is_empty() {
            return;
        }
        let decoded = percent_decode_str(value).decode_utf8_lossy().into_owned();
        if decoded != value && !decoded.is_empty() {
            found.push(decoded);
        }
        found.push(value.to_owned());
    };
    let rest = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            keep(password);
        }
    }
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if is_secret_parameter(name) {
                    keep(value);
                }
            }
        }
    }
    found
}

/// `text` with every one of `secrets` replaced by `***`, longest first.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut ordered: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    ordered.into_iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), MASK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Hunter2Secret";

    #[track_caller]
    fn hidden(raw: &str) -> String {
        let shown = redact_url(raw).expect("a URL");
        assert!(!shown.contains(SECRET), "{raw} shown as {shown}");
        assert!(!shown.contains("Hunter2"), "{raw} shown as {shown}");
        shown
    }

    #[test]
    fn the_userinfo_password_is_hidden() {
        assert_eq!(
            hidden(&format!("postgres://app:{SECRET}@db:5432/app")),
            "postgres://app:***@db:5432/app"
        );
        hidden(&format!("postgresql://app:{SECRET}%40x@db/app"));
    }

    #[test]
    fn password_parameters_are_hidden_and_the_rest_kept() {
        assert_eq!(
            hidden(&format!(
                "postgres://app@db/app?sslmode=require&password={SECRET}&application_name=t"
            )),
            "postgres://app@db/app?sslmode=require&password=***&application_name=t"
        );
        assert_eq!(
            hidden(&format!("postgres://db/app?sslpassword={SECRET}")),
            "postgres://db/app?sslpassword=***"
        );
        assert_eq!(
            hidden(&format!("postgres://u:{SECRET}@db/app?password={SECRET}2")),
            "postgres://u:***@db/app?password=***"
        );
    }

    #[test]
    fn percent_encoded_and_odd_parameter_names_are_hidden() {
        for name in [
            "pass%77ord",
            "%70%61%73%73%77%6F%72%64",
            "PASSWORD",
            "ssl%70assword",
        ] {
            let shown = hidden(&format!("postgres://db/app?{name}={SECRET}"));
            assert_eq!(shown, format!("postgres://db/app?{name}=***"));
        }
        hidden(&format!(
            "postgres://db/app?password={SECRET}%zz&password=x"
        ));
        hidden(&format!("postgres://db/app#password={SECRET}"));
    }

    #[test]
    fn the_secrets_are_found_as_written_and_decoded() {
        let raw = format!("postgres://u:{SECRET}%21@db/app?pass%77ord=a%20b&sslpassword=c%zz");
        let secrets = secrets_of(&raw);
        for expected in [
            format!("{SECRET}%21"),
            format!("{SECRET}!"),
            "a%20b".into(),
            "a b".into(),
            "c%zz".into(),
        ] {
            assert!(secrets.contains(&expected), "{expected} not in {secrets:?}");
        }
        assert!(secrets_of("postgres://u@db/app?sslmode=require").is_empty());
    }

    #[test]
    fn scrubbing_hides_every_secret_a_message_quotes() {
        let raw = format!("postgres://u@db/app?password={SECRET}%zz");
        let message =
            format!("invalid percent-encoded token: \"{SECRET}%zz\" in postgres://u@db/app");
        let scrubbed = scrub(&message, &secrets_of(&raw));
        assert_eq!(
            scrubbed,
            "invalid percent-encoded token: \"***\" in postgres://u@db/app"
        );
    }
}
