//! Which cluster wrote a WAL file: the system identifier in a segment's first (long) page
//! header, and in `global/pg_control`. `wal push` checks it before storing, `wal fetch` before
//! handing a segment to recovery, so a repository never mixes clusters.

use crate::wal::{Lsn, SegmentName, TimelineId};
use std::path::Path;

/// `XLP_LONG_HEADER`: the page starts with `XLogLongPageHeaderData` (the first page of every
/// segment does).
const XLP_LONG_HEADER: u16 = 0x0002;
/// Size of `XLogLongPageHeaderData` up to and including `xlp_xlog_blcksz`.
const LONG_HEADER_LEN: usize = 40;

/// The fields of a segment's first page header that identify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// `xlp_tli`: the timeline the page was written on.
    pub timeline: TimelineId,
    /// `xlp_pageaddr`: the LSN of the page's first byte.
    pub page_address: Lsn,
    /// `xlp_sysid`: the cluster's system identifier.
    pub system_identifier: u64,
    /// `xlp_seg_size`: the cluster's WAL segment size.
    pub segment_size: u64,
}

impl SegmentHeader {
    /// Reads the long page header at the start of `bytes` (little-endian, as on every platform
    /// PostgreSQL is built for here).
    pub fn parse(bytes: &[u8]) -> Result<SegmentHeader, String> {
        if bytes.len() < LONG_HEADER_LEN {
            return Err(format!(
                "it is {} bytes long, too short for a WAL page header",
                bytes.len()
            ));
        }
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if u16_at(2) & XLP_LONG_HEADER == 0 {
            return Err(
                "its first page has no long header, so it is not the start of a WAL segment".into(),
            );
        }
        let segment_size = u64::from(u32_at(32));
        if !segment_size.is_power_of_two() || segment_size < (1 << 20) {
            return Err(format!(
                "its header names an impossible segment size ({segment_size} bytes)"
            ));
        }
        Ok(SegmentHeader {
            timeline: TimelineId(u32_at(4)),
            page_address: Lsn(u64_at(8)),
            system_identifier: u64_at(24),
            segment_size,
        })
    }

    /// Checks that the header belongs to `segment` (a recycled or misnamed file carries another
    /// address) and that the file is one whole segment.
    pub fn check_matches(&self, segment: SegmentName, file_len: u64) -> Result<(), String> {
        if self.page_address != segment.start(self.segment_size) {
            return Err(format!(
                "its first page is at {}, not at the start of segment {segment}",
                self.page_address
            ));
        }
        if file_len != self.segment_size {
            return Err(format!(
                "it is {file_len} bytes long, not one {}-byte segment",
                self.segment_size
            ));
        }
        Ok(())
    }
}

/// The system identifier in `pgdata/global/pg_control`, if that file can be read.
pub fn control_system_identifier(pgdata: &Path) -> Option<u64> {
    let bytes = std::fs::read(pgdata.join("global").join("pg_control")).ok()?;
    // ControlFileData starts with the 64-bit system identifier, in host byte order.
    Some(u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_page(sysid: u64, address: u64, segment_size: u32) -> Vec<u8> {
        let mut page = vec![0u8; 8192];
        page[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        page[2..4].copy_from_slice(&(XLP_LONG_HEADER | 0x0004).to_le_bytes());
        page[4..8].copy_from_slice(&1u32.to_le_bytes());
        page[8..16].copy_from_slice(&address.to_le_bytes());
        page[24..32].copy_from_slice(&sysid.to_le_bytes());
        page[32..36].copy_from_slice(&segment_size.to_le_bytes());
        page[36..40].copy_from_slice(&8192u32.to_le_bytes());
        page
    }

    #[test]
    fn reads_the_long_header() {
        let header =
            SegmentHeader::parse(&first_page(7_441_234_567_890_123_456, 0x300_0000, 16 << 20))
                .unwrap();
        assert_eq!(header.system_identifier, 7_441_234_567_890_123_456);
        assert_eq!(header.timeline, TimelineId(1));
        assert_eq!(header.segment_size, 16 << 20);
        let segment: SegmentName = "000000010000000000000003".parse().unwrap();
        assert_eq!(header.check_matches(segment, 16 << 20), Ok(()));
        let other: SegmentName = "000000010000000000000004".parse().unwrap();
        assert!(header
            .check_matches(other, 16 << 20)
            .unwrap_err()
            .contains("not at the start"));
        assert!(header
            .check_matches(segment, 8192)
            .unwrap_err()
            .contains("bytes long"));
    }

    #[test]
    fn refuses_what_is_not_a_segment_start() {
        assert!(SegmentHeader::parse(b"short").is_err());
        let mut page = first_page(1, 0, 16 << 20);
        page[2..4].copy_from_slice(&0u16.to_le_bytes());
        assert!(SegmentHeader::parse(&page)
            .unwrap_err()
            .contains("long header"));
        assert!(SegmentHeader::parse(&first_page(1, 0, 1000))
            .unwrap_err()
            .contains("segment size"));
    }
}
