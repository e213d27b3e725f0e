//! One row of a worker's rejects output, shared by the evaluator that finds
//! it (`fleet-spec`) and the machinery that writes it (`fleet-worker`).

/// The most bytes of a rejected value kept in [`Reject::prefix`].
pub const REJECT_PREFIX_BYTES: usize = 256;

/// A rejected cell (or line) of an input batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Row index within the batch.
    pub row: usize,
    /// The row's id (empty when it has none).
    pub id: String,
    pub column: String,
    /// What was wrong, ending with where ("at byte N").
    pub message: String,
    /// The first bytes of the rejected value ([`Reject::prefix_of`]).
    pub prefix: String,
}

impl Reject {
    /// The first [`REJECT_PREFIX_BYTES`] of `value`, cut at a character
    /// boundary (invalid UTF-8 further in is replaced, not dropped).
    ///
    /// ```
    /// use fleet_contract::Reject;
    /// assert_eq!(Reject::prefix_of(b"{\"a\":1"), "{\"a\":1");
    /// let long = "é".repeat(200); // 400 bytes; 256 falls inside no character
    /// assert_eq!(Reject::prefix_of(long.as_bytes()), "é".repeat(128));
    /// ```
    pub fn prefix_of(value: &[u8]) -> String {
        let mut end = value.len().min(REJECT_PREFIX_BYTES);
        while end > 0 && std::str::from_utf8(&value[..end]).is_err() {
            end -= 1;
        }
        String::from_utf8_lossy(&value[..end]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_cuts_inside_a_character_before_it() {
        // 255 ASCII bytes, then a 2-byte character across the limit.
        let mut v = vec![b'a'; 255];
        v.extend_from_slice("é".as_bytes());
        assert_eq!(Reject::prefix_of(&v).len(), 255);
        assert_eq!(Reject::prefix_of(&[]), "");
    }
}
