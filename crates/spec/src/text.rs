//! Dates and words exactly as FEATURES.md §3 defines them.

/// A calendar date as `year * 10_000 + month * 100 + day`, so that integer
/// order is date order and the parts are cheap to take apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ymd(pub i32);

impl Ymd {
    /// Builds a date from checked parts; `None` for a day that does not
    /// exist or a year too far out to represent (beyond ±214,748).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        if day == 0 || day > fleet_contract::days_in_month(year, month)? {
            return None;
        }
        year.checked_mul(10_000)?.checked_add(month as i32 * 100 + day as i32).map(Ymd)
    }
    pub fn year(self) -> i32 {
        self.0.div_euclid(10_000)
    }
    pub fn month(self) -> i32 {
        self.0.div_euclid(100).rem_euclid(100)
    }
    pub fn day(self) -> i32 {
        self.0.rem_euclid(100)
    }
    /// Days since 1970-01-01 (Arrow's `Date32`), proleptic Gregorian.
    pub fn days_since_epoch(self) -> i32 {
        let d = fleet_contract::Date { year: self.year(), month: self.month() as u32, day: self.day() as u32 };
        d.days_since_epoch() as i32
    }
    /// `months(a, b)` of FEATURES.md: (b.year - a.year) * 12 + (b.month - a.month).
    pub fn months_until(self, later: Ymd) -> i64 {
        (later.year() as i64 - self.year() as i64) * 12 + (later.month() as i64 - self.month() as i64)
    }
}

impl std::fmt::Display for Ymd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year(), self.month(), self.day())
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses exactly "YYYY", "YYYY-MM" or "YYYY-MM-DD" (ASCII digits, no
/// surrounding space, a real day of that month); a missing month or day is 1.
pub fn parse_date(s: &str) -> Option<Ymd> {
    let b = s.as_bytes();
    let year = digits(b.get(0..4)?)? as i32;
    match b.len() {
        4 => Ymd::new(year, 1, 1),
        7 if b[4] == b'-' => Ymd::new(year, digits(&b[5..7])?, 1),
        10 if b[4] == b'-' && b[7] == b'-' => Ymd::new(year, digits(&b[5..7])?, digits(&b[8..10])?),
        _ => None,
    }
}

/// Calls `f` with each word of `text`: ASCII letters lower-cased, every "."
/// deleted, split on every byte that is not a-z or 0-9 (so every non-ASCII
/// character separates). Words longer than `buf` are passed as `None`, which
/// still separates the words around them.
pub fn for_each_word(text: &str, mut f: impl FnMut(Option<&[u8]>)) {
    let mut buf = [0u8; 48];
    let mut len = 0usize;
    let mut overlong = false;
    let mut in_word = false;
    for &c in text.as_bytes() {
        let c = c.to_ascii_lowercase();
        if c == b'.' {
            continue;
        }
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            in_word = true;
            if len < buf.len() {
                buf[len] = c;
                len += 1;
            } else {
                overlong = true;
            }
        } else if in_word {
            f(if overlong { None } else { Some(&buf[..len]) });
            len = 0;
            overlong = false;
            in_word = false;
        }
    }
    if in_word {
        f(if overlong { None } else { Some(&buf[..len]) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_word(s, |w| v.push(w.map_or("<long>".into(), |w| String::from_utf8(w.to_vec()).unwrap())));
        v
    }

    #[test]
    fn dates_accept_only_the_three_forms() {
        assert_eq!(parse_date("2016"), Ymd::new(2016, 1, 1));
        assert_eq!(parse_date("2016-03"), Ymd::new(2016, 3, 1));
        assert_eq!(parse_date("2016-02-29"), Ymd::new(2016, 2, 29));
        for bad in [
            "2015-02-29",
            "2016-13",
            "2016-00",
            "2016-3",
            " 2016",
            "2016 ",
            "16",
            "2016-03-00",
            "2016/03",
            "2016-03-32",
            "２０１６",
            "2016-04-31",
            "1900-02-29",
            "",
            "2016-03-1",
            "2016-03-01T00:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        assert_eq!(parse_date("2000-02-29"), Ymd::new(2000, 2, 29));
    }

    #[test]
    fn years_too_far_out_are_not_dates() {
        assert_eq!(Ymd::new(214_748, 12, 31).map(|d| (d.year(), d.month(), d.day())), Some((214_748, 12, 31)));
        assert_eq!(Ymd::new(-214_748, 1, 1).map(|d| (d.year(), d.month(), d.day())), Some((-214_748, 1, 1)));
        assert_eq!(Ymd::new(214_749, 1, 1), None);
        assert_eq!(Ymd::new(i32::MAX, 1, 1), None);
        assert_eq!(Ymd::new(-214_749, 1, 1), None);
    }

    #[test]
    fn months_and_epoch_days() {
        let a = parse_date("2016-03").unwrap();
        let b = parse_date("2025-07-01").unwrap();
        assert_eq!(a.months_until(b), 9 * 12 + 4);
        assert_eq!(b.months_until(a), -(9 * 12 + 4));
        assert_eq!(parse_date("1970-01-01").unwrap().days_since_epoch(), 0);
        assert_eq!(parse_date("2025-07-01").unwrap().days_since_epoch(), 20_270);
        assert_eq!(parse_date("1969-12-31").unwrap().days_since_epoch(), -1);
        assert_eq!(b.to_string(), "2025-07-01");
    }

    #[test]
    fn words_follow_the_contract() {
        assert_eq!(words("M.S. in Physics"), ["ms", "in", "physics"]);
        assert_eq!(words("Ph.D."), ["phd"]);
        assert_eq!(words("Sr. Director, R&D"), ["sr", "director", "r", "d"]);
        assert_eq!(words("co-founder/CEO"), ["co", "founder", "ceo"]);
        assert_eq!(words("Diplôme"), ["dipl", "me"]);
        assert_eq!(words("ph d"), ["ph", "d"]);
        assert_eq!(words("..."), Vec::<String>::new());
        assert_eq!(words("x".repeat(60).as_str()), ["<long>"]);
    }
}
