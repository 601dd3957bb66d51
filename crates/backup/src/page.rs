//! PostgreSQL data-page checksums (the algorithm of `src/include/storage/checksum_impl.h`), and
//! which files are relation files whose pages carry them. A backup verifies pages while it
//! reads them, following pgBackRest's rules: new pages (`pd_upper == 0`) are not checked, nor
//! pages whose LSN is at or past the backup's start (they may be torn by a concurrent write and
//! are replayed from WAL anyway); a page that fails is read once more before it is reported.

use crate::wal::Lsn;

/// PostgreSQL's page size this verifier supports (the default `BLCKSZ`).
pub const PAGE_SIZE: usize = 8192;
const N_SUMS: usize = 32;
const FNV_PRIME: u32 = 16_777_619;
const BASE_OFFSETS: [u32; N_SUMS] = [
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
];

#[inline(always)]
fn mix(checksum: u32, value: u32) -> u32 {
    let tmp = checksum ^ value;
    tmp.wrapping_mul(FNV_PRIME) ^ (tmp >> 17)
}

/// `pg_checksum_page`: the checksum PostgreSQL stores in `pd_checksum` of block `block`.
pub fn page_checksum(page: &[u8], block: u32) -> u16 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { page_checksum_avx2(page, block) };
    }
    checksum_rows(page, block)
}

/// [`checksum_rows`] compiled for AVX2: its 32 independent sums are 4 vectors of 8 lanes (the
/// layout PostgreSQL chose for vectorising). Without it, x86-64's baseline has no 32-bit
/// vector multiply and page checks were ~3 % of a backup's CPU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn page_checksum_avx2(page: &[u8], block: u32) -> u16 {
    checksum_rows(page, block)
}

#[inline(always)]
fn checksum_rows(page: &[u8], block: u32) -> u16 {
    debug_assert_eq!(page.len(), PAGE_SIZE);
    let mut sums = BASE_OFFSETS;
    let mut row = [0u32; N_SUMS];
    for (index, words) in page.chunks_exact(4 * N_SUMS).enumerate() {
        for (value, word) in row.iter_mut().zip(words.chunks_exact(4)) {
            *value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        }
        if index == 0 {
            // pd_checksum (bytes 8..10, the low half of word 2) counts as zero.
            row[2] &= 0xFFFF_0000;
        }
        for (sum, value) in sums.iter_mut().zip(row) {
            *sum = mix(*sum, value);
        }
    }
    for _ in 0..2 {
        for sum in sums.iter_mut() {
            *sum = mix(*sum, 0);
        }
    }
    let folded = sums.iter().fold(0u32, |acc, sum| acc ^ sum) ^ block;
    ((folded % 65_535) + 1) as u16
}

/// Whether `page` (block `block`) passes verification for a backup that started at `start`.
pub fn page_is_valid(page: &[u8], block: u32, start: Lsn) -> bool {
    let pd_upper = u16::from_le_bytes([page[14], page[15]]);
    if pd_upper == 0 {
        return true;
    }
    let xlogid = u32::from_le_bytes([page[0], page[1], page[2], page[3]]);
    let xrecoff = u32::from_le_bytes([page[4], page[5], page[6], page[7]]);
    if Lsn((u64::from(xlogid) << 32) | u64::from(xrecoff)) >= start {
        return true;
    }
    u16::from_le_bytes([page[8], page[9]]) == page_checksum(page, block)
}

/// For a relation file path (relative to PGDATA), its segment number (`.N` suffix, 0 without):
/// files under `base/<db>/`, `global/` or `pg_tblspc/<oid>/<version>/<db>/` named
/// `<relfilenode>[_fsm|_vm|_init][.N]`. Other files have no page checksums.
pub fn relation_segment(path: &str) -> Option<u32> {
    let parts: Vec<&str> = path.split('/').collect();
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let in_relation_dir = match parts.as_slice() {
        ["global", _] => true,
        ["base", database, _] => digits(database),
        ["pg_tblspc", oid, _, database, _] => digits(oid) && digits(database),
        _ => false,
    };
    if !in_relation_dir {
        return None;
    }
    let name = parts.last()?;
    let (base, segment) = match name.split_once('.') {
        Some((base, segment)) if digits(segment) => (base, segment.parse().ok()?),
        Some(_) => return None,
        None => (*name, 0),
    };
    let relation = match base.split_once('_') {
        Some((relation, "fsm" | "vm" | "init")) => relation,
        Some(_) => return None,
        None => base,
    };
    digits(relation).then_some(segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with a header and some tuple bytes, its checksum set for `block`.
    fn valid_page(block: u32) -> Vec<u8> {
        let mut page = vec![0u8; PAGE_SIZE];
        page[0..4].copy_from_slice(&0u32.to_le_bytes());
        page[4..8].copy_from_slice(&0x0100_0028u32.to_le_bytes());
        page[12..14].copy_from_slice(&40u16.to_le_bytes());
        page[14..16].copy_from_slice(&8000u16.to_le_bytes());
        for (index, byte) in page[8000..].iter_mut().enumerate() {
            *byte = (index % 7) as u8;
        }
        let checksum = page_checksum(&page, block);
        page[8..10].copy_from_slice(&checksum.to_le_bytes());
        page
    }

    #[test]
    fn checksum_ignores_its_own_field_and_mixes_the_block_number() {
        let page = valid_page(3);
        let stored = u16::from_le_bytes([page[8], page[9]]);
        assert_eq!(page_checksum(&page, 3), stored);
        assert_ne!(page_checksum(&page, 4), stored);
        assert_ne!(stored, 0);
    }

    #[test]
    fn the_vectorised_checksum_equals_the_plain_one() {
        let mut page = valid_page(0);
        for (index, byte) in page.iter_mut().enumerate() {
            *byte = (index.wrapping_mul(2_654_435_761) >> 7) as u8;
        }
        for block in [0, 1, 131_071, u32::MAX] {
            assert_eq!(page_checksum(&page, block), checksum_rows(&page, block));
        }
    }

    #[test]
    fn damaged_page_fails_unless_new_or_newer_than_the_backup() {
        let start: Lsn = "1/0".parse().unwrap();
        let mut page = valid_page(7);
        assert!(page_is_valid(&page, 7, start));
        page[8100] ^= 0xFF;
        assert!(!page_is_valid(&page, 7, start));
        // Written after the backup started: may be torn, replayed from WAL, not checked.
        assert!(page_is_valid(&page, 7, "0/1000000".parse().unwrap()));
        assert!(page_is_valid(&vec![0u8; PAGE_SIZE], 9, start));
    }

    #[test]
    fn relation_files_are_recognised() {
        assert_eq!(relation_segment("base/5/16384"), Some(0));
        assert_eq!(relation_segment("base/5/16384.3"), Some(3));
        assert_eq!(relation_segment("base/5/16384_fsm"), Some(0));
        assert_eq!(relation_segment("base/5/16384_vm.1"), Some(1));
        assert_eq!(relation_segment("global/1262"), Some(0));
        assert_eq!(
            relation_segment("pg_tblspc/16385/PG_15_202209061/5/16386"),
            Some(0)
        );
        assert_eq!(relation_segment("global/pg_control"), None);
        assert_eq!(relation_segment("base/5/PG_VERSION"), None);
        assert_eq!(relation_segment("base/5/pg_filenode.map"), None);
        assert_eq!(relation_segment("base/5/t3_16384"), None);
        assert_eq!(relation_segment("pg_xact/0000"), None);
    }
}
