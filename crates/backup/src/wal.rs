//! WAL positions and file names: [`Lsn`], [`TimelineId`] and [`SegmentName`], parsed once at the
//! edge. The WAL segment size is a property of the cluster (`wal_segment_size`), so segment
//! arithmetic always takes it as an argument.

use std::fmt;
use std::str::FromStr;

/// A WAL position (`pg_lsn`), e.g. `16/B374D848`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;
    fn from_str(text: &str) -> Result<Lsn, String> {
        let (high, low) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("invalid LSN {text:?}: expected the form 16/B374D848"))?;
        let parse = |part: &str| {
            u32::from_str_radix(part, 16)
                .map_err(|_| format!("invalid LSN {text:?}: not hexadecimal"))
        };
        Ok(Lsn((u64::from(parse(high)?) << 32) | u64::from(parse(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Lsn, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A timeline id; displayed as PostgreSQL names it in file names (8 hex digits).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TimelineId(pub u32);

impl fmt::Display for TimelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

impl TimelineId {
    /// `00000002.history`: the history file that starts this timeline (none for timeline 1).
    pub fn history_file_name(self) -> String {
        format!("{self}.history")
    }
}

/// A WAL segment file name: timeline, then the segment number split in two 8-digit halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    timeline: TimelineId,
    /// `log` and `seg` of the file name: the segment number is `log * segments_per_id + seg`.
    log: u32,
    seg: u32,
}

impl SegmentName {
    /// The segment of `timeline` that holds `lsn`, for segments of `segment_size` bytes.
    pub fn containing(timeline: TimelineId, lsn: Lsn, segment_size: u64) -> SegmentName {
        let number = lsn.0 / segment_size;
        let per_id = 0x1_0000_0000 / segment_size;
        SegmentName {
            timeline,
            log: (number / per_id) as u32,
            seg: (number % per_id) as u32,
        }
    }

    /// The segment that follows this one on the same timeline.
    pub fn next(self, segment_size: u64) -> SegmentName {
        SegmentName::containing(
            self.timeline,
            Lsn(self.start(segment_size).0 + segment_size),
            segment_size,
        )
    }

    /// The LSN of the first byte of this segment.
    pub fn start(self, segment_size: u64) -> Lsn {
        let per_id = 0x1_0000_0000 / segment_size;
        Lsn((u64::from(self.log) * per_id + u64::from(self.seg)) * segment_size)
    }

    /// The segment's timeline.
    pub fn timeline(self) -> TimelineId {
        self.timeline
    }
}

impl FromStr for SegmentName {
    type Err = String;
    fn from_str(text: &str) -> Result<SegmentName, String> {
        if text.len() != 24 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid WAL segment name {text:?}: expected 24 hex digits"
            ));
        }
        let part =
            |range: std::ops::Range<usize>| u32::from_str_radix(&text[range], 16).unwrap_or(0);
        Ok(SegmentName {
            timeline: TimelineId(part(0..8)),
            log: part(8..16),
            seg: part(16..24),
        })
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:08X}{:08X}", self.timeline, self.log, self.seg)
    }
}

/// The segments a backup from `start` to `stop` needs to become consistent, oldest first.
/// `stop` is the end of the backup's last record, so a `stop` exactly on a segment boundary
/// needs nothing from the segment that starts there.
pub fn segments_between(
    timeline: TimelineId,
    start: Lsn,
    stop: Lsn,
    segment_size: u64,
) -> Vec<SegmentName> {
    let last_byte = Lsn(stop.0.saturating_sub(1).max(start.0));
    let last = SegmentName::containing(timeline, last_byte, segment_size);
    let mut segment = SegmentName::containing(timeline, start, segment_size);
    let mut segments = vec![segment];
    while segment < last {
        segment = segment.next(segment_size);
        segments.push(segment);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB16: u64 = 16 * 1024 * 1024;

    #[test]
    fn lsn_parses_and_prints() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("x/1".parse::<Lsn>().is_err());
    }

    #[test]
    fn segment_names_follow_postgresql() {
        let lsn: Lsn = "0/3000028".parse().unwrap();
        let segment = SegmentName::containing(TimelineId(1), lsn, MB16);
        assert_eq!(segment.to_string(), "000000010000000000000003");
        // 256 segments of 16 MB per "log" id: segment 0xFF is followed by log 1, seg 0.
        let last: SegmentName = "0000000100000000000000FF".parse().unwrap();
        assert_eq!(last.next(MB16).to_string(), "000000010000000100000000");
        assert_eq!(last.start(MB16), Lsn(0xFF * MB16));
        let parsed: SegmentName = "000000020000000A00000011".parse().unwrap();
        assert_eq!(parsed.timeline(), TimelineId(2));
        assert_eq!(parsed.to_string(), "000000020000000A00000011");
        assert!("00000001".parse::<SegmentName>().is_err());
    }

    #[test]
    fn segments_between_start_and_stop() {
        let names = |start: &str, stop: &str| -> Vec<String> {
            segments_between(
                TimelineId(1),
                start.parse().unwrap(),
                stop.parse().unwrap(),
                MB16,
            )
            .iter()
            .map(ToString::to_string)
            .collect()
        };
        assert_eq!(
            names("0/3000028", "0/3000100"),
            ["000000010000000000000003"]
        );
        assert_eq!(
            names("0/3000028", "0/5000100"),
            [
                "000000010000000000000003",
                "000000010000000000000004",
                "000000010000000000000005"
            ]
        );
        // A stop exactly at a boundary does not need the next segment.
        assert_eq!(
            names("0/3000028", "0/4000000"),
            ["000000010000000000000003"]
        );
    }

    #[test]
    fn timeline_history_name() {
        assert_eq!(TimelineId(2).history_file_name(), "00000002.history");
    }
}
