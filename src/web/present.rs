//! How pages read and show values people type and see: dates, months, and (from
//! [`crate::money`]) dollars. One place, so every page accepts the same forms and refuses
//! the same way: a sentence that names the field and what it accepts.

use chrono::{NaiveDate, NaiveDateTime};

/// The first and last day any date field accepts. Far wider than any data Orgkeeper holds,
/// and far inside what date arithmetic can reach (chrono ends at year 262,143).
pub const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
pub const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).expect("valid date");

fn in_range(day: NaiveDate, field: &str) -> Result<NaiveDate, String> {
    if (FIRST_DAY..=LAST_DAY).contains(&day) {
        Ok(day)
    } else {
        Err(format!(
            "The {field} date must be between {FIRST_DAY} and {LAST_DAY}; {day} is outside that."
        ))
    }
}

/// A day typed as `2026-01-31`, within [`FIRST_DAY`]..=[`LAST_DAY`]. `field` names it in the
/// message ("from", "end").
pub fn day(raw: &str, field: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("The {field} date must be a date like 2026-01-31."))?;
    in_range(day, field)
}

/// A moment typed as `2026-11-30T14:00` (seconds optional, `T` or a space), UTC, within the
/// same range; `None` if the text is not of that form.
pub fn moment(raw: &str, field: &str) -> Option<Result<NaiveDateTime, String>> {
    let raw = raw.trim();
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|at| in_range(at.date(), field).map(|_| at))
}

/// A month typed as `2026-01`: its first day, within the same range.
pub fn month(raw: &str) -> Result<NaiveDate, String> {
    let first = NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d")
        .map_err(|_| "The month must look like 2026-01.".to_owned())?;
    in_range(first, "month's first")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_within_a_range_that_date_arithmetic_can_reach() {
        assert_eq!(
            day(" 2026-01-31 ", "from"),
            Ok(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap())
        );
        assert_eq!(
            day("-262143-01-01", "from"),
            Err("The from date must be between 2000-01-01 and 2099-12-31; -262143-01-01 is outside that.".into())
        );
        assert!(day("9999-12-31", "to").is_err());
        assert_eq!(
            day("2026-02-30", "to"),
            Err("The to date must be a date like 2026-01-31.".into())
        );
        assert_eq!(
            month("2026-11"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
        );
        assert!(month("262143-12").is_err());
        assert!(month("2026-13").is_err());
        assert!(moment("2026-11-30T14:00", "review").unwrap().is_ok());
        assert!(moment("+262143-11-30T14:00", "review").is_none_or(|r| r.is_err()));
        assert!(moment("2026-11-30", "review").is_none());
    }
}
