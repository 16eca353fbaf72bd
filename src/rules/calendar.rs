//! Business-hours calendars: an SLA clock with a calendar only runs while the business is open,
//! so its deadline is its start plus the threshold counted in open time. The deadline is worked
//! out once, when the clock starts, by walking the opening hours day by day in the calendar's
//! IANA time zone (jiff with its bundled time-zone database, so every machine agrees and none
//! needs a system tzdb); daylight-saving changes and holidays fall out of that walk.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use time::{Duration, OffsetDateTime};

use super::config::{BusinessHours, FieldError};

/// Minutes in a day: an opening range ends at most at midnight.
const DAY_MINUTES: u16 = 24 * 60;

#[derive(Debug, Clone)]
pub(super) struct Calendar {
    zone: TimeZone,
    /// Opening ranges per weekday from Monday, as minutes of the local day, in order.
    weekly: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
}

impl Calendar {
    /// Checks `hours` (found at `path`), adding what is wrong to `errors`.
    pub(super) fn new(hours: &BusinessHours, path: &str, errors: &mut Vec<FieldError>) -> Option<Calendar> {
        let before = errors.len();
        let zone = TimeZone::get(&hours.time_zone)
            .map_err(|_| {
                let message =
                    format!("unknown time zone {:?} (use an IANA name such as Europe/Berlin)", hours.time_zone);
                errors.push(FieldError::new(format!("{path}.time_zone"), message));
            })
            .ok();
        let mut weekly: [Vec<(u16, u16)>; 7] = Default::default();
        for ((day, ranges), parsed) in hours.weekly.days().into_iter().zip(&mut weekly) {
            let mut end_of_last = 0;
            for (i, text) in ranges.iter().enumerate() {
                let field = format!("{path}.weekly.{day}[{i}]");
                match parse_range(text) {
                    Some((from, _)) if from < end_of_last => {
                        errors.push(FieldError::new(field, "starts before the range before it ends"));
                    }
                    Some((from, to)) => {
                        parsed.push((from, to));
                        end_of_last = to;
                    }
                    None => errors.push(FieldError::new(field, "expected HH:MM-HH:MM, start before end")),
                }
            }
        }
        if errors.len() == before && weekly.iter().all(Vec::is_empty) {
            errors.push(FieldError::new(format!("{path}.weekly"), "open on no day of the week"));
        }
        let mut holidays = BTreeSet::new();
        for (i, text) in hours.holidays.iter().enumerate() {
            match text.parse::<Date>() {
                Ok(date) => {
                    holidays.insert(date);
                }
                Err(_) => errors.push(FieldError::new(format!("{path}.holidays[{i}]"), "expected a date YYYY-MM-DD")),
            }
        }
        if errors.len() > before {
            return None;
        }
        Some(Calendar { zone: zone?, weekly, holidays })
    }

    /// The moment `open` of business time has passed since `start`.
    pub(super) fn add(&self, start: OffsetDateTime, open: Duration) -> OffsetDateTime {
        let mut left = open;
        let mut date = self.zone.to_datetime(to_timestamp(start)).date();
        loop {
            if !self.holidays.contains(&date) {
                let weekday = date.weekday().to_monday_zero_offset() as usize;
                for &(from, to) in &self.weekly[weekday] {
                    let (from, to) = (self.instant(date, from).max(start), self.instant(date, to));
                    if to <= from {
                        continue;
                    }
                    if left <= to - from {
                        return from + left;
                    }
                    left -= to - from;
                }
            }
            // Validation leaves at least one open range a week and thresholds of at most
            // `MAX_THRESHOLD_SECS`, so this walk ends long before the end of jiff's calendar.
            let Ok(next) = date.tomorrow() else { return from_timestamp(Timestamp::MAX) };
            date = next;
        }
    }

    /// `minute` of the local day `date` as a moment (a time skipped by a daylight-saving change
    /// moves forward, as clocks do).
    fn instant(&self, date: Date, minute: u16) -> OffsetDateTime {
        let local = if minute == DAY_MINUTES {
            date.tomorrow().map(|d| d.at(0, 0, 0, 0))
        } else {
            Ok(date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0))
        };
        from_timestamp(local.and_then(|local| self.zone.to_timestamp(local)).unwrap_or(Timestamp::MAX))
    }
}

/// `HH:MM-HH:MM` as minutes of the day, the start before the end; `24:00` is midnight at the end.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let (from, to) = text.trim().split_once('-')?;
    let (from, to) = (parse_minute(from)?, parse_minute(to)?);
    (from < to && from < DAY_MINUTES).then_some((from, to))
}

fn parse_minute(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h * 60 + m;
    (m < 60 && minute <= DAY_MINUTES).then_some(minute)
}

fn to_timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::MAX)
}

fn from_timestamp(t: Timestamp) -> OffsetDateTime {
    // jiff's range lies inside time's, so this cannot fail.
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::config::WeeklyHours;
    use crate::rules::tests::utc;

    fn office(holidays: &[&str]) -> Calendar {
        let nine_to_five = vec!["09:00-17:00".to_string()];
        let weekly = WeeklyHours {
            mon: nine_to_five.clone(),
            tue: nine_to_five.clone(),
            wed: nine_to_five.clone(),
            thu: nine_to_five.clone(),
            fri: nine_to_five,
            ..WeeklyHours::default()
        };
        let hours = BusinessHours {
            time_zone: "Europe/Berlin".into(),
            weekly,
            holidays: holidays.iter().map(|h| h.to_string()).collect(),
        };
        let mut errors = Vec::new();
        let calendar = Calendar::new(&hours, "p", &mut errors);
        assert_eq!(errors, []);
        calendar.unwrap()
    }

    #[test]
    fn friday_afternoon_plus_an_hour_is_monday_morning() {
        // Friday 2026-03-06 16:30 in Berlin (UTC+1) is 15:30 UTC.
        let start = utc(2026, 3, 6, 15, 30);
        assert_eq!(office(&[]).add(start, Duration::hours(1)), utc(2026, 3, 9, 8, 30));
        assert_eq!(office(&["2026-03-09"]).add(start, Duration::hours(1)), utc(2026, 3, 10, 8, 30));
    }

    #[test]
    fn a_start_outside_the_hours_waits_for_the_opening() {
        // Saturday noon: the clock starts Monday 09:00 local.
        let start = utc(2026, 3, 7, 11, 0);
        assert_eq!(office(&[]).add(start, Duration::minutes(90)), utc(2026, 3, 9, 9, 30));
        // Before opening on a weekday, and exactly a full day of open time.
        let early = utc(2026, 3, 10, 5, 0);
        assert_eq!(office(&[]).add(early, Duration::hours(8)), utc(2026, 3, 10, 16, 0));
    }

    #[test]
    fn opening_hours_follow_daylight_saving_time() {
        // Berlin moves to UTC+2 on Sunday 2026-03-29: Friday 16:00 local is 15:00 UTC, Monday
        // 09:00 local is 07:00 UTC.
        let start = utc(2026, 3, 27, 15, 0);
        assert_eq!(office(&[]).add(start, Duration::hours(2)), utc(2026, 3, 30, 8, 0));
    }

    #[test]
    fn malformed_hours_are_named() {
        let hours = BusinessHours {
            time_zone: "Mars/Olympus".into(),
            weekly: WeeklyHours {
                mon: vec!["09:00-12:00".into(), "11:00-17:00".into()],
                tue: vec!["9-17".into()],
                wed: vec!["17:00-09:00".into()],
                thu: vec!["00:00-24:00".into()],
                ..WeeklyHours::default()
            },
            holidays: vec!["2026-02-30".into()],
        };
        let mut errors = Vec::new();
        assert!(Calendar::new(&hours, "p", &mut errors).is_none());
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["p.time_zone", "p.weekly.mon[1]", "p.weekly.tue[0]", "p.weekly.wed[0]", "p.holidays[0]"]);
    }
}
