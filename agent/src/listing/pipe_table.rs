//! mod_callcenter's `callcenter_config ... list` output: pipe-separated
//! rows under a header of column names, then a final `+OK` line.
//!
//! Values are not escaped, so a `|` inside a value adds a field. Only the
//! caller id columns (`cid_number`, `cid_name`) hold free text; when a row
//! has more fields than the header, columns left of them are read from the
//! left and columns right of them from the right.

use super::{ListingError, check_api_error};

/// A pipe-separated table with its final `+OK` line checked and removed.
pub(super) struct Table<'a> {
    /// Which listing, for errors.
    what: &'static str,
    columns: Vec<&'a str>,
    /// Data rows split at `|`.
    pub(super) rows: Vec<Vec<&'a str>>,
    /// First and last column that may hold a raw `|`.
    free: Option<(usize, usize)>,
}

impl<'a> Table<'a> {
    /// `None` when the body is only `+OK` (an SQL listing with no row).
    pub(super) fn parse(what: &'static str, body: &'a str) -> Result<Option<Self>, ListingError> {
        let body = check_api_error(body)?;
        let mut lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
        // The `+OK` line is the only proof that the listing is complete.
        if lines.pop().map(str::trim) != Some("+OK") {
            return Err(ListingError::malformed(what, "no final +OK line"));
        }
        let Some((header, rows)) = lines.split_first() else {
            return Ok(None);
        };
        let columns: Vec<&str> = header.split('|').collect();
        if columns.len() < 2 {
            return Err(ListingError::malformed(
                what,
                "header is not pipe-separated",
            ));
        }
        let pos = |name| columns.iter().position(|c| *c == name);
        let free = pos("cid_number").zip(pos("cid_name"));
        Ok(Some(Self {
            what,
            rows: rows.iter().map(|r| r.split('|').collect()).collect(),
            columns,
            free,
        }))
    }

    /// Index of a column by name.
    pub(super) fn column(&self, name: &str) -> Result<usize, ListingError> {
        self.columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| ListingError::malformed(self.what, format!("no {name} column")))
    }

    /// The value of column `idx` in `row`, or `None` if the row cannot be
    /// aligned with the header.
    pub(super) fn field(&self, row: &[&'a str], idx: usize) -> Option<&'a str> {
        let n = self.columns.len();
        if row.len() == n {
            return row.get(idx).copied();
        }
        let (first, last) = self.free?;
        if row.len() < n || (first..=last).contains(&idx) {
            return None;
        }
        if idx < first {
            row.get(idx).copied()
        } else {
            row.get(row.len() - (n - idx)).copied()
        }
    }
}
