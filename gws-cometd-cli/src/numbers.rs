//! The numbers options take, checked the same way whatever the option: clap hands every
//! value to these parsers (negative ones included, with `allow_negative_numbers`), so
//! `--count -1`, `--duration -1` and `--max-network-delay 0` all get one clear line naming
//! the option, the value and what it should be.

/// Longest duration an option takes: about 31 years, far past any run, and within what a
/// deadline can be set to.
const MAX_SECONDS: f64 = 1e9;

/// A number of seconds greater than 0 (`--duration`, `--max-network-delay`, ...).
pub fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= MAX_SECONDS => Ok(secs),
        _ => Err("expected a number of seconds greater than 0, such as 10 or 0.5".to_owned()),
    }
}

/// A number of seconds, 0 or more (a wait that may be skipped).
#[cfg(feature = "bridge")]
pub fn seconds_or_zero(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if (0.0..=MAX_SECONDS).contains(&secs) => Ok(secs),
        _ => Err("expected a number of seconds, 0 or more, such as 1 or 0.5".to_owned()),
    }
}

/// A whole number of 1 or more (`--count`, `--buffer`, ...).
pub fn positive(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of 1 or more".to_owned()),
    }
}

/// Like [`positive`], as a `usize`.
#[cfg(feature = "bridge")]
pub fn positive_usize(text: &str) -> Result<usize, String> {
    positive(text).and_then(|n| usize::try_from(n).map_err(|_| "too large".to_owned()))
}

/// A whole number of 0 or more (`--seed`).
pub fn whole(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| "expected a whole number of 0 or more".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_zero_and_nonsense_numbers_are_refused_alike() {
        assert_eq!(seconds("10"), Ok(10.0));
        assert_eq!(seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "-0.5", "nan", "inf", "1e300", "ten", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds_or_zero("0"), Ok(0.0));
        assert!(seconds_or_zero("-1").is_err());
        assert_eq!(positive("3"), Ok(3));
        for bad in ["0", "-1", "1.5", "x"] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert_eq!(whole("0"), Ok(0));
        assert!(whole("-1").is_err());
    }
}
