//! Money and month formatting shared by pages, exports and alerts. Amounts are exact decimal
//! cents until they are shown.

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

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

/// `2026-12` for a day in December 2026.
pub fn month_key(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}
