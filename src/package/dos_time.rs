//! The one timestamp of a `.zip` package, as the MS-DOS date and time every zip entry carries.
//!
//! It comes from the build's timestamp (`SOURCE_DATE_EPOCH`, else 0), read as UTC. MS-DOS dates
//! start on 1980-01-01, so anything earlier (0 included) becomes 1980-01-01 00:00:00; they end
//! with 2107, so a later time is refused. Seconds are stored in steps of 2, rounded down.

use zip::DateTime;

use crate::error::{Error, Result};

/// 1980-01-01T00:00:00Z, the earliest MS-DOS date.
const DOS_EPOCH_SECONDS: u64 = 315_532_800;

/// 2107-12-31T23:59:59Z, the last second an MS-DOS date can hold.
const DOS_LAST_SECOND: u64 = 4_354_819_199;

/// The zip timestamp for `seconds` since 1970 (UTC).
pub fn zip_timestamp(seconds: u64) -> Result<DateTime> {
    if seconds > DOS_LAST_SECOND {
        return Err(Error::usage(format!(
            "SOURCE_DATE_EPOCH={seconds} is after 2107-12-31, the last date a zip entry can hold"
        ))
        .hint("set it to an earlier time, e.g. $(git log -1 --format=%ct)"));
    }
    let seconds = seconds.max(DOS_EPOCH_SECONDS);
    let (year, month, day) = civil_date((seconds / 86_400) as i64);
    let time_of_day = seconds % 86_400;
    DateTime::from_date_and_time(
        year as u16,
        month as u8,
        day as u8,
        (time_of_day / 3_600) as u8,
        (time_of_day / 60 % 60) as u8,
        (time_of_day % 60) as u8,
    )
    .map_err(|_| Error::failure(format!("cannot express {seconds} as a zip timestamp")))
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(seconds: u64) -> String {
        zip_timestamp(seconds).unwrap().to_string()
    }

    #[test]
    fn converts_utc_seconds_to_dos_date_and_time() {
        assert_eq!(shown(1_700_000_000), "2023-11-14 22:13:20");
        // Leap day, and an odd second rounded down to the 2-second step.
        assert_eq!(shown(951_782_401), "2000-02-29 00:00:00");
        assert_eq!(shown(DOS_LAST_SECOND), "2107-12-31 23:59:58");
    }

    #[test]
    fn times_before_1980_become_the_dos_epoch_and_after_2107_are_refused() {
        assert_eq!(shown(0), "1980-01-01 00:00:00");
        assert_eq!(shown(DOS_EPOCH_SECONDS - 1), "1980-01-01 00:00:00");
        assert_eq!(shown(DOS_EPOCH_SECONDS), "1980-01-01 00:00:00");
        assert!(zip_timestamp(DOS_LAST_SECOND + 1).is_err());
    }
}
