//! Time named in a question: "in May 2023", "on 8 May 2023", "in 2023",
//! "yesterday", "last week", "three days ago" become an interval of
//! `created_at`, relative expressions counted back from a reference time
//! the caller gives (default: now). A search can then filter to that
//! interval or favour what falls in it (`query_time`).
//!
//! Only what is unambiguous is read: a month needs a year or a reference
//! (the latest such month not after it), a bare number is never a year
//! unless it has four digits and "in" before it. Anything else is no time.

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// The interval a question names, and the words that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Named {
    /// Start, inclusive.
    pub from: OffsetDateTime,
    /// End, exclusive.
    pub to: OffsetDateTime,
    /// The words read ("may 2023", "last week").
    pub phrase: String,
}

const MONTHS: [(&str, Month); 12] = [
    ("january", Month::January),
    ("february", Month::February),
    ("march", Month::March),
    ("april", Month::April),
    ("may", Month::May),
    ("june", Month::June),
    ("july", Month::July),
    ("august", Month::August),
    ("september", Month::September),
    ("october", Month::October),
    ("november", Month::November),
    ("december", Month::December),
];

const NUMBERS: [(&str, i64); 10] = [
    ("a", 1),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
];

/// A month's name or its abbreviation of three letters or more ("sept").
fn month(word: &str) -> Option<Month> {
    MONTHS
        .iter()
        .find(|(name, _)| word.len() >= 3 && name.starts_with(word))
        .map(|(_, m)| *m)
}

/// A four-digit year in a plausible range.
fn year(word: &str) -> Option<i32> {
    (word.len() == 4)
        .then(|| word.parse::<i32>().ok())
        .flatten()
        .filter(|y| (1900..=2200).contains(y))
}

/// A small count, in digits or words ("three", "a").
fn count(word: &str) -> Option<i64> {
    word.parse::<i64>()
        .ok()
        .filter(|n| (1..=366).contains(n))
        .or_else(|| NUMBERS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n))
}

fn midnight(d: Date) -> OffsetDateTime {
    d.with_time(Time::MIDNIGHT).assume_utc()
}

fn month_span(y: i32, m: Month) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let start = Date::from_calendar_date(y, m, 1).ok()?;
    let (ny, nm) = if m == Month::December {
        (y + 1, Month::January)
    } else {
        (y, m.next())
    };
    Some((
        midnight(start),
        midnight(Date::from_calendar_date(ny, nm, 1).ok()?),
    ))
}

fn day_span(d: Date) -> (OffsetDateTime, OffsetDateTime) {
    (midnight(d), midnight(d) + Duration::DAY)
}

/// The first time expression in `query`, read against `reference`.
pub(super) fn named_time(query: &str, reference: OffsetDateTime) -> Option<Named> {
    let lower = query.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let today = reference.date();
    let at = |i: usize| words.get(i).copied().unwrap_or("");
    for i in 0..words.len() {
        let w = at(i);
        let named = |from, to, n: usize| {
            Some(Named {
                from,
                to,
                phrase: words.get(i..i + n).unwrap_or_default().join(" "),
            })
        };
        // "8 may 2023", "8th of may 2023"
        let day_word = w.trim_end_matches(|c: char| c.is_alphabetic());
        if let Ok(day) = day_word.parse::<u8>() {
            let skip = usize::from(at(i + 1) == "of");
            if let (Some(m), Some(y)) = (month(at(i + 1 + skip)), year(at(i + 2 + skip)))
                && let Ok(d) = Date::from_calendar_date(y, m, day)
            {
                let (from, to) = day_span(d);
                return named(from, to, 3 + skip);
            }
        }
        if let Some(m) = month(w) {
            // "may 8 2023", "may 8th, 2023"
            let next = at(i + 1).trim_end_matches(|c: char| c.is_alphabetic());
            if let (Ok(day), Some(y)) = (next.parse::<u8>(), year(at(i + 2)))
                && let Ok(d) = Date::from_calendar_date(y, m, day)
            {
                let (from, to) = day_span(d);
                return named(from, to, 3);
            }
            // "may 2023"
            if let Some(y) = year(at(i + 1))
                && let Some((from, to)) = month_span(y, m)
            {
                return named(from, to, 2);
            }
            // "in may": the latest May not after the reference. "may" alone
            // is a verb too often to be read without "in".
            if i > 0 && at(i - 1) == "in" {
                let y = if m as u8 <= today.month() as u8 {
                    today.year()
                } else {
                    today.year() - 1
                };
                if let Some((from, to)) = month_span(y, m) {
                    return named(from, to, 1);
                }
            }
        }
        // "in 2023"
        if i > 0
            && matches!(at(i - 1), "in" | "during")
            && let Some(y) = year(w)
            && let (Ok(a), Ok(b)) = (
                Date::from_calendar_date(y, Month::January, 1),
                Date::from_calendar_date(y + 1, Month::January, 1),
            )
        {
            return named(midnight(a), midnight(b), 1);
        }
        match (w, at(i + 1)) {
            ("yesterday", _) => {
                let (from, to) = day_span(today - Duration::DAY);
                return named(from, to, 1);
            }
            ("today", _) => {
                let (from, to) = day_span(today);
                return named(from, to, 1);
            }
            ("last" | "past", "week") => {
                let to = midnight(today) + Duration::DAY;
                return named(to - Duration::days(8), to, 2);
            }
            ("last" | "past", "month") => {
                let (y, m) = if today.month() == Month::January {
                    (today.year() - 1, Month::December)
                } else {
                    (today.year(), today.month().previous())
                };
                let (from, to) = month_span(y, m)?;
                return named(from, to, 2);
            }
            ("last" | "past", "year") => {
                let from = Date::from_calendar_date(today.year() - 1, Month::January, 1).ok()?;
                let to = Date::from_calendar_date(today.year(), Month::January, 1).ok()?;
                return named(midnight(from), midnight(to), 2);
            }
            ("this", "week") => {
                let to = midnight(today) + Duration::DAY;
                return named(to - Duration::days(7), to, 2);
            }
            ("this", "month") => {
                let (from, to) = month_span(today.year(), today.month())?;
                return named(from, to, 2);
            }
            _ => {}
        }
        // "three days ago", "2 weeks ago", "a month ago": that day, week or
        // month, give or take half of it.
        if let Some(n) = count(w)
            && at(i + 2) == "ago"
        {
            let unit = match at(i + 1).trim_end_matches('s') {
                "day" => Duration::DAY,
                "week" => Duration::WEEK,
                "month" => Duration::days(30),
                "year" => Duration::days(365),
                _ => continue,
            };
            let centre = reference - unit * (n as i32);
            let half = unit / 2;
            let (from, to) = if unit == Duration::DAY {
                day_span(centre.date())
            } else {
                (centre - half, centre + half)
            };
            return named(from, to, 3);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const REF: OffsetDateTime = datetime!(2023-06-15 12:00 UTC);

    fn span(q: &str) -> Option<(OffsetDateTime, OffsetDateTime, String)> {
        named_time(q, REF).map(|n| (n.from, n.to, n.phrase))
    }

    #[test]
    fn absolute_dates_months_and_years() {
        assert_eq!(
            span("What did Caroline do on 8 May 2023?"),
            Some((
                datetime!(2023-05-08 0:00 UTC),
                datetime!(2023-05-09 0:00 UTC),
                "8 may 2023".into()
            ))
        );
        assert_eq!(
            span("where did she go in May 2023").map(|s| (s.0, s.1)),
            Some((
                datetime!(2023-05-01 0:00 UTC),
                datetime!(2023-06-01 0:00 UTC)
            ))
        );
        assert_eq!(
            span("on December 3rd, 2022?").map(|s| (s.0, s.1)),
            Some((
                datetime!(2022-12-03 0:00 UTC),
                datetime!(2022-12-04 0:00 UTC)
            ))
        );
        assert_eq!(
            span("what happened in 2022").map(|s| (s.0, s.1)),
            Some((
                datetime!(2022-01-01 0:00 UTC),
                datetime!(2023-01-01 0:00 UTC)
            ))
        );
        // The latest such month not after the reference.
        assert_eq!(
            span("in August").map(|s| s.0),
            Some(datetime!(2022-08-01 0:00 UTC))
        );
        assert_eq!(
            span("in march").map(|s| s.0),
            Some(datetime!(2023-03-01 0:00 UTC))
        );
    }

    #[test]
    fn relative_times_count_back_from_the_reference() {
        assert_eq!(
            span("what did I say yesterday").map(|s| (s.0, s.1)),
            Some((
                datetime!(2023-06-14 0:00 UTC),
                datetime!(2023-06-15 0:00 UTC)
            ))
        );
        assert_eq!(
            span("last week's plan").map(|s| (s.0, s.1)),
            Some((
                datetime!(2023-06-08 0:00 UTC),
                datetime!(2023-06-16 0:00 UTC)
            ))
        );
        assert_eq!(
            span("the trip last month").map(|s| (s.0, s.1)),
            Some((
                datetime!(2023-05-01 0:00 UTC),
                datetime!(2023-06-01 0:00 UTC)
            ))
        );
        assert_eq!(
            span("three days ago").map(|s| (s.0, s.1)),
            Some((
                datetime!(2023-06-12 0:00 UTC),
                datetime!(2023-06-13 0:00 UTC)
            ))
        );
        assert_eq!(span("2 weeks ago").map(|s| s.2), Some("2 weeks ago".into()));
    }

    #[test]
    fn words_that_only_look_like_time_are_not_read() {
        for q in [
            "May I ask what Ann reads?",
            "the 2023 plan",
            "call me at 5",
            "Where does Ann work now?",
            "mark the march of progress",
        ] {
            assert_eq!(span(q), None, "{q}");
        }
    }
}
