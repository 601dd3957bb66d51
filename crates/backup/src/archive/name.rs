//! The names of the files PostgreSQL archives: segments (`000000010000000000000003`), partial
//! segments left by a promotion (`….partial`), backup history files (`….00000028.backup`) and
//! timeline history files (`00000002.history`). Parsed once, at the edge of `wal push/fetch`.

use crate::wal::{SegmentName, TimelineId};
use std::fmt;
use std::str::FromStr;

/// What kind of archived file a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFileKind {
    /// A complete WAL segment.
    Segment,
    /// The last, incomplete segment of a timeline, archived at promotion.
    Partial,
    /// A backup history file written by `pg_backup_stop()`.
    BackupHistory,
    /// A timeline history file.
    TimelineHistory,
}

/// A validated archive file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFileName {
    name: String,
    kind: WalFileKind,
    timeline: TimelineId,
    segment: Option<SegmentName>,
}

impl WalFileName {
    /// The file name as PostgreSQL wrote it.
    pub fn as_str(&self) -> &str {
        &self.name
    }
    /// What kind of file it is.
    pub fn kind(&self) -> WalFileKind {
        self.kind
    }
    /// The timeline the file belongs to (its archive directory).
    pub fn timeline(&self) -> TimelineId {
        self.timeline
    }
    /// The segment the file is (or, for `.partial` and `.backup` files, is named after);
    /// `None` for a timeline history file.
    pub fn segment(&self) -> Option<SegmentName> {
        self.segment
    }
}

impl FromStr for WalFileName {
    type Err = String;
    fn from_str(text: &str) -> Result<WalFileName, String> {
        let invalid = || {
            format!(
                "{text:?} is not a WAL file name (a 24-hex-digit segment, a .partial or .backup file, \
                 or a timeline .history file)"
            )
        };
        let is_hex = |part: &str| part.bytes().all(|byte| byte.is_ascii_hexdigit());
        if let Some(timeline) = text.strip_suffix(".history") {
            if timeline.len() != 8 || !is_hex(timeline) {
                return Err(invalid());
            }
            let timeline = TimelineId(u32::from_str_radix(timeline, 16).map_err(|_| invalid())?);
            return Ok(WalFileName {
                name: text.to_string(),
                kind: WalFileKind::TimelineHistory,
                timeline,
                segment: None,
            });
        }
        let (segment_part, kind) = if let Some(segment) = text.strip_suffix(".partial") {
            (segment, WalFileKind::Partial)
        } else if let Some(rest) = text.strip_suffix(".backup") {
            let (segment, offset) = rest.split_once('.').ok_or_else(invalid)?;
            if offset.len() != 8 || !is_hex(offset) {
                return Err(invalid());
            }
            (segment, WalFileKind::BackupHistory)
        } else {
            (text, WalFileKind::Segment)
        };
        let segment: SegmentName = segment_part.parse().map_err(|_| invalid())?;
        Ok(WalFileName {
            name: text.to_string(),
            kind,
            timeline: segment.timeline(),
            segment: Some(segment),
        })
    }
}

impl fmt::Display for WalFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_archived_kind_parses() {
        let segment: WalFileName = "000000010000000000000003".parse().unwrap();
        assert_eq!(segment.kind(), WalFileKind::Segment);
        assert_eq!(segment.timeline(), TimelineId(1));
        let partial: WalFileName = "000000020000000A00000011.partial".parse().unwrap();
        assert_eq!(partial.kind(), WalFileKind::Partial);
        assert_eq!(
            partial.segment().unwrap().to_string(),
            "000000020000000A00000011"
        );
        let backup: WalFileName = "000000010000000000000002.00000028.backup".parse().unwrap();
        assert_eq!(backup.kind(), WalFileKind::BackupHistory);
        let history: WalFileName = "0000000A.history".parse().unwrap();
        assert_eq!(history.kind(), WalFileKind::TimelineHistory);
        assert_eq!(history.timeline(), TimelineId(10));
        assert_eq!(history.segment(), None);
        assert_eq!(history.to_string(), "0000000A.history");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "RECOVERYXLOG",
            "00000001.history.tmp",
            "0000001.history",
            "000000010000000000000003.x.backup",
            "00000001000000000000000G",
            "../000000010000000000000003",
        ] {
            assert!(bad.parse::<WalFileName>().is_err(), "{bad}");
        }
    }
}
