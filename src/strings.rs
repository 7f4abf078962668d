//! How string columns are held in memory: each batch's bytes in buffers of exactly the size
//! they need, and a column whose values repeat (machine, platform, project, jobset and job
//! names) with each distinct value stored once and every row a view of it.
//!
//! Polars' own builder grows a batch's buffers by doubling, so about a third of what it
//! allocates for a batch is never written; over ten million steps and as many builds that is
//! most of a gigabyte. And a value longer than twelve bytes is copied into every row that holds
//! it: a 35-byte machine URI costs 35 bytes a step. Both cost nothing here. Values, nulls and
//! order are unchanged; only where the bytes live changes.

use std::hash::BuildHasher;

use polars::prelude::{IdxSize, PlRandomState, PlSmallStr, StringChunked};
use polars_arrow::array::{Array, Utf8ViewArray, View};
use polars_arrow::bitmap::MutableBitmap;
use polars_arrow::datatypes::ArrowDataType;

/// Values longer than this are stored in a buffer; shorter ones live inside their view.
const INLINE: usize = View::MAX_INLINE_SIZE as usize;

/// The largest buffer a view can address (its offset is a `u32`, and Arrow readers take
/// buffer lengths as `i32`).
const BUFFER_LIMIT: usize = i32::MAX as usize;

/// Builds one string column (or one batch of it) value by value.
#[derive(Default)]
pub struct StrBuilder {
    views: Vec<View>,
    validity: MutableBitmap,
    /// Buffers already full, each trimmed to its length.
    sealed: Vec<Vec<u8>>,
    /// Bytes of the values longer than [`INLINE`] since the last sealed buffer.
    data: Vec<u8>,
}

impl StrBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        StrBuilder {
            views: Vec::with_capacity(rows),
            validity: MutableBitmap::with_capacity(rows),
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            self.views.push(View::default());
            self.validity.push(false);
            return;
        };
        let bytes = value.as_bytes();
        if bytes.len() > INLINE && self.data.len() + bytes.len() > BUFFER_LIMIT {
            self.seal();
        }
        let view = View::new_from_bytes(bytes, self.sealed.len() as u32, self.data.len() as u32);
        if bytes.len() > INLINE {
            self.data.extend_from_slice(bytes);
        }
        self.views.push(view);
        self.validity.push(true);
    }

    /// The bytes of the `i`-th value pushed (a null's are empty).
    #[inline]
    fn value(&self, i: u32) -> &[u8] {
        let view = &self.views[i as usize];
        if let Some(inline) = view.get_inlined_slice() {
            return inline;
        }
        let len = view.length as usize;
        let buffer = match self.sealed.get(view.buffer_idx as usize) {
            Some(sealed) => sealed.as_slice(),
            None => self.data.as_slice(),
        };
        let from = view.offset as usize;
        &buffer[from..from + len]
    }

    fn seal(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.shrink_to_fit();
        self.sealed.push(data);
    }

    pub fn finish(mut self) -> Utf8ViewArray {
        if !self.data.is_empty() {
            self.seal();
        }
        let validity = Option::from(self.validity);
        // SAFETY: every view was made by `View::new_from_bytes` from a `str` whose bytes were
        // written at that offset of that buffer (or inline), so each view is in bounds and
        // valid UTF-8. Checking it again (`try_new`) cost a quarter of the decoding time.
        unsafe {
            Utf8ViewArray::new_unchecked_unknown_md(
                ArrowDataType::Utf8View,
                self.views.into(),
                self.sealed.into_iter().map(Into::into).collect(),
                validity,
                None,
            )
        }
    }

    pub fn finish_chunked(self, name: PlSmallStr) -> StringChunked {
        StringChunked::with_chunk(name, self.finish())
    }
}

/// Builds a column of repeated values: each distinct value once, each row the number of its
/// value (4 bytes a row while building, where a view is 16).
pub struct Interner {
    /// The numbers of the distinct values, found by a value's hash and told apart by comparing
    /// with the value stored in `distinct`: no second copy of each value as a key (over a
    /// million builds' job names, a third of them distinct, allocating and freeing those
    /// copies was a third of the interning).
    index: hashbrown::HashTable<u32>,
    hasher: PlRandomState,
    distinct: StrBuilder,
    /// Per row the number of its value in `distinct`, or [`NULL`].
    rows: Vec<u32>,
    /// The number of the last value pushed: rows come in runs of one machine or platform (a
    /// build's steps, a jobset's builds), and comparing with the last value is cheaper than
    /// hashing it. [`NULL`] while there is none.
    last_id: u32,
}

const NULL: u32 = u32::MAX;

impl Default for Interner {
    fn default() -> Self {
        Interner {
            index: hashbrown::HashTable::new(),
            hasher: PlRandomState::default(),
            distinct: StrBuilder::default(),
            rows: Vec::new(),
            last_id: NULL,
        }
    }
}

impl Interner {
    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        let id = match value {
            None => NULL,
            Some(v)
                if self.last_id != NULL && self.distinct.value(self.last_id) == v.as_bytes() =>
            {
                self.last_id
            }
            Some(v) => {
                let (hasher, distinct) = (&self.hasher, &self.distinct);
                let hash = hasher.hash_one(v.as_bytes());
                let id = match self
                    .index
                    .find(hash, |&id| distinct.value(id) == v.as_bytes())
                {
                    Some(&id) => id,
                    None => {
                        let id = self.distinct.len() as u32;
                        self.distinct.push(Some(v));
                        let distinct = &self.distinct;
                        self.index
                            .insert_unique(hash, id, |&id| hasher.hash_one(distinct.value(id)));
                        id
                    }
                };
                self.last_id = id;
                id
            }
        };
        self.rows.push(id);
    }

    pub fn finish(self, name: PlSmallStr) -> StringChunked {
        drop(self.index);
        let distinct = self.distinct.finish();
        let picks = self
            .rows
            .iter()
            .map(|&id| (id != NULL).then_some((0, id as usize)));
        gather(name, &[&distinct], picks)
    }
}

/// The column whose rows are values of `parts`, each `Some((part, row))` of `picks` a view
/// of that row (its bytes not copied), `None` a null.
pub fn gather(
    name: PlSmallStr,
    parts: &[&Utf8ViewArray],
    picks: impl ExactSizeIterator<Item = Option<(usize, usize)>>,
) -> StringChunked {
    // Each part's buffers follow the previous parts' in the gathered array.
    let first_buffer = starts(parts, |p| p.data_buffers().len());
    let mut validity = MutableBitmap::with_capacity(picks.len());
    let views: Vec<View> = picks
        .map(|pick| {
            validity.push(pick.is_some());
            let Some((part, row)) = pick else {
                return View::default();
            };
            let mut view = parts[part].views()[row];
            if view.length as usize > INLINE {
                view.buffer_idx += first_buffer[part] as u32;
            }
            view
        })
        .collect();
    let buffers: Vec<_> = parts
        .iter()
        .flat_map(|p| p.data_buffers().iter().cloned())
        .collect();
    let buffered = parts.iter().map(|p| p.total_buffer_len()).sum();
    // SAFETY: each view is copied from a valid array of `parts`, its buffer index moved to
    // where that array's buffers are in `buffers` (a null row's default view is an empty
    // inline one).
    let arr = unsafe {
        Utf8ViewArray::new_unchecked_unknown_md(
            ArrowDataType::Utf8View,
            views.into(),
            buffers.into(),
            Option::from(validity),
            Some(buffered),
        )
    };
    StringChunked::with_chunk(name, arr)
}

/// Where each of `parts` starts when they are laid end to end, each `size` long.
fn starts<T>(parts: &[T], size: impl Fn(&T) -> usize) -> Vec<usize> {
    parts
        .iter()
        .scan(0, |n, p| {
            let start = *n;
            *n += size(p);
            Some(start)
        })
        .collect()
}

/// `ca`'s rows in the order of `rows` (indices into the whole column), as views of its own
/// bytes. Polars' gather over a column of several chunks, as a Parquet snapshot reads, writes
/// every value into a new array instead: over ten million steps a third of a gigabyte more for
/// the machine names, whose few distinct values it stops sharing, and a transient copy of every
/// derivation path.
pub fn take(ca: &StringChunked, rows: &[IdxSize]) -> StringChunked {
    let parts: Vec<&Utf8ViewArray> = ca.downcast_iter().collect();
    let first_row = starts(&parts, |p| p.len());
    let picks = rows.iter().map(|&r| {
        let r = r as usize;
        // The last chunk starting at or before `r`: an empty chunk shares its start with the
        // next one and comes before it, so it is never picked.
        let part = first_row.partition_point(|&s| s <= r) - 1;
        let row = r - first_row[part];
        parts[part].is_valid(row).then_some((part, row))
    });
    gather(ca.name().clone(), &parts, picks)
}

/// `ca` with each distinct value stored once (see the module doc), or `ca` itself when its
/// buffers hold less than half the bytes of its values: most values are short enough to live
/// in their views, or they are shared already (as the database reader and the sample build
/// such columns, and as Parquet's dictionary pages decode).
pub fn shared(ca: &StringChunked) -> StringChunked {
    let (buffered, bytes) = ca.downcast_iter().fold((0, 0), |(b, t), a| {
        (b + a.total_buffer_len(), t + a.total_bytes_len())
    });
    if buffered * 2 < bytes {
        return ca.clone();
    }
    let mut interner = Interner::default();
    for v in ca.iter() {
        interner.push(v);
    }
    interner.finish(ca.name().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::ChunkTake;

    fn values(ca: &StringChunked) -> Vec<Option<String>> {
        ca.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn sample() -> Vec<Option<&'static str>> {
        vec![
            Some("ssh://builder-17.example.org"),
            None,
            Some("x86_64-linux"),
            Some(""),
            Some("ssh://builder-17.example.org"),
            Some("aarch64-linux"),
            None,
            Some("ssh://builder-17.example.org"),
        ]
    }

    #[test]
    fn builder_keeps_values_nulls_and_order_in_exact_buffers() {
        let mut b = StrBuilder::with_capacity(2);
        for v in sample() {
            b.push(v);
        }
        let arr = b.finish();
        let ca = StringChunked::with_chunk("c".into(), arr.clone());
        let want: Vec<Option<String>> = sample().iter().map(|v| v.map(String::from)).collect();
        assert_eq!(values(&ca), want);
        assert_eq!(ca.null_count(), 2);
        // Only the values longer than a view's inline part are in the buffer, once each row.
        let long: usize = sample()
            .iter()
            .flatten()
            .map(|v| v.len())
            .filter(|&l| l > INLINE)
            .sum();
        assert_eq!(arr.total_buffer_len(), long);
        assert_eq!(
            arr.data_buffers().iter().map(|b| b.len()).sum::<usize>(),
            long
        );
    }

    #[test]
    fn interner_stores_each_distinct_value_once() {
        let mut i = Interner::default();
        for _ in 0..1000 {
            for v in sample() {
                i.push(v);
            }
        }
        let ca = i.finish("c".into());
        assert_eq!(ca.len(), 8000);
        assert_eq!(ca.null_count(), 2000);
        // Repeats, nulls and the empty string in every order the cycle gives.
        let want: StringChunked = sample().into_iter().cycle().take(8000).collect();
        assert_eq!(values(&ca), values(&want));
        let buffered: usize = ca.downcast_iter().map(|a| a.total_buffer_len()).sum();
        assert_eq!(
            buffered,
            "ssh://builder-17.example.org".len() + "aarch64-linux".len()
        );
    }

    #[test]
    fn gathering_from_two_arrays_points_into_both() {
        let array = |values: &[&str]| {
            let mut b = StrBuilder::default();
            for v in values {
                b.push(Some(v));
            }
            b.finish()
        };
        let a = array(&["/nix/store/aaaa-first.drv", "short"]);
        let b = array(&["/nix/store/bbbb-second.drv", "/nix/store/cccc-third.drv"]);
        let picks = [Some((1, 1)), None, Some((0, 0)), Some((1, 0)), Some((0, 1))];
        let ca = gather("c".into(), &[&a, &b], picks.into_iter());
        let want = [
            Some("/nix/store/cccc-third.drv"),
            None,
            Some("/nix/store/aaaa-first.drv"),
            Some("/nix/store/bbbb-second.drv"),
            Some("short"),
        ];
        assert_eq!(ca.iter().collect::<Vec<_>>(), want);
        // No bytes copied: the gathered array holds exactly both arrays' buffers.
        let buffered: usize = ca.downcast_iter().map(|x| x.total_buffer_len()).sum();
        assert_eq!(buffered, a.total_buffer_len() + b.total_buffer_len());
    }

    #[test]
    fn sharing_a_column_changes_storage_not_values() {
        let rows: Vec<Option<&str>> = sample().into_iter().cycle().take(800).collect();
        let plain: StringChunked = rows.iter().copied().collect();
        let before: usize = plain.downcast_iter().map(|a| a.total_buffer_len()).sum();
        let shared = shared(&plain);
        assert_eq!(values(&shared), values(&plain));
        let after: usize = shared.downcast_iter().map(|a| a.total_buffer_len()).sum();
        assert!(
            after * 50 < before,
            "{after} bytes shared vs {before} plain"
        );
        // Shared already: returned as it is.
        let again = super::shared(&shared);
        assert_eq!(values(&again), values(&plain));
    }

    #[test]
    fn taking_rows_of_several_chunks_matches_polars_without_copying() {
        let long = |i: usize| format!("ssh://builder-{i:03}.example.org");
        let chunk = |values: Vec<Option<String>>| -> Utf8ViewArray {
            let mut b = StrBuilder::default();
            for v in &values {
                b.push(v.as_deref());
            }
            b.finish()
        };
        // An empty chunk between two full ones.
        let ca = StringChunked::from_chunk_iter(
            "c".into(),
            [
                chunk(vec![Some(long(0)), None, Some("x".into())]),
                chunk(vec![]),
                chunk(vec![Some(long(3)), Some(long(4)), None]),
            ],
        );
        assert_eq!(ca.chunks().len(), 3);
        let rows: Vec<IdxSize> = vec![4, 1, 0, 5, 2, 3, 0];
        let ours = take(&ca, &rows);
        let want = ca.take(&rows).unwrap();
        assert_eq!(values(&ours), values(&want));
        let buffered =
            |c: &StringChunked| -> usize { c.downcast_iter().map(|a| a.total_buffer_len()).sum() };
        assert_eq!(buffered(&ours), buffered(&ca));
    }
}
