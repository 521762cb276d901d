//! Money and month formatting shared by pages, exports and alerts. Amounts are exact decimal
//! cents until they are shown.

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

/// The largest amount a person may type: no spend limit or budget is larger, and keeping every
/// stored amount far below `Decimal`'s range keeps the arithmetic on it from overflowing.
pub const MAX_DOLLARS: u64 = 1_000_000_000;

/// Dollars and cents as a person types them ("1,200.50", "$300") → exact cents, or a sentence
/// saying why not. `what` names the field ("the monthly limit", "the budget").
pub fn parse_dollars(raw: &str, what: &str) -> Result<Decimal, String> {
    let cleaned: String = raw
        .trim()
        .trim_start_matches('$')
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    let example = "for example 2500 or 2,500.00";
    let range = format!(
        "more than $0 and at most ${}",
        group_digits(&MAX_DOLLARS.to_string())
    );
    if cleaned.is_empty() {
        return Err(format!("Enter {what} in US dollars, {example}."));
    }
    if !cleaned.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "\"{}\" is not an amount of dollars: use digits only, {example}.",
            raw.trim()
        ));
    }
    let Ok(d) = cleaned.parse::<Decimal>() else {
        // Digits and a dot that do not make a number of this size.
        return Err(format!(
            "{} must be {range}.",
            crate::labels::capitalised(what)
        ));
    };
    if d <= Decimal::ZERO || d > Decimal::from(MAX_DOLLARS) {
        return Err(format!(
            "{} must be {range}.",
            crate::labels::capitalised(what)
        ));
    }
    if d.normalize().scale() > 2 {
        return Err("Use at most two decimals (cents).".into());
    }
    Ok(d * Decimal::from(100))
}

/// `$1,234.56` from cents, rounded half to even.
pub fn dollars(cents: Decimal) -> String {
    let d = (cents / Decimal::from(100))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    let s = format!("{:.2}", d.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let sign = if d.is_sign_negative() && !d.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}${}.{frac}", group_digits(int))
}

/// `1234567` → `1,234,567`.
pub fn group_digits(int: &str) -> String {
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as pages write it, to one decimal with thousands separators: 100763.14 → "100,763.1%".
pub fn percent(p: Decimal) -> String {
    let s = format!("{:.1}", p.round_dp(1).abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "0"));
    let sign = if p < Decimal::ZERO { "−" } else { "" };
    format!("{sign}{}.{frac}%", group_digits(int))
}

/// `2026-12` for a day in December 2026.
pub fn month_key(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percent_has_one_decimal_and_thousands_separators() {
        assert_eq!(percent(Decimal::new(10_076_314, 2)), "100,763.1%");
        assert_eq!(percent(Decimal::new(3359, 1)), "335.9%");
        assert_eq!(percent(Decimal::ZERO), "0.0%");
        assert_eq!(percent(Decimal::new(-885, 1)), "−88.5%");
    }

    #[test]
    fn dollars_as_typed_become_exact_cents_within_the_range() {
        assert_eq!(
            parse_dollars("$2,500.25", "the limit"),
            Ok(Decimal::from(250_025))
        );
        assert_eq!(parse_dollars(" 40 ", "the limit"), Ok(Decimal::from(4_000)));
        assert_eq!(
            parse_dollars("1000000000", "the limit"),
            Ok(Decimal::from(100_000_000_000u64))
        );
        for (typed, says) in [
            ("0", "The limit must be more than $0 and at most $1,000,000,000."),
            ("1000000000.01", "The limit must be more than $0 and at most $1,000,000,000."),
            ("79228162514264337593543950335", "The limit must be more than $0 and at most $1,000,000,000."),
            ("792281625142643375935439503.35", "The limit must be more than $0 and at most $1,000,000,000."),
            ("99999999999999999999999999999999", "The limit must be more than $0 and at most $1,000,000,000."),
            ("1.234", "Use at most two decimals (cents)."),
            ("-5", "\"-5\" is not an amount of dollars: use digits only, for example 2500 or 2,500.00."),
            ("1e3", "\"1e3\" is not an amount of dollars: use digits only, for example 2500 or 2,500.00."),
            ("", "Enter the limit in US dollars, for example 2500 or 2,500.00."),
        ] {
            assert_eq!(parse_dollars(typed, "the limit"), Err(says.to_owned()), "{typed:?}");
        }
    }
}
