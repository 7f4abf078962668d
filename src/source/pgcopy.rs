//! Decoding PostgreSQL's binary COPY format straight into column builders.
//!
//! The stream is a header (`PGCOPY\n\xff\r\n\0`, flags, extension), then tuples (`i16` field
//! count, then per field an `i32` length, -1 for NULL, and the value in network byte order), then
//! the trailer `-1`. Our SELECTs cast every column to `int4`, `int8`, `bool` or `text`, so a
//! column's [`ColType`] says how to read it and the decoder never needs type OIDs.
//!
//! Input arrives in arbitrary chunks (the server sends one CopyData message per row, but nothing
//! guarantees it), so a tuple split across chunks is carried over; a tuple is appended to the
//! builders only once it is complete, so a stream cut mid-row leaves no partial row behind.

use polars::prelude::DataFrame;

use crate::dataset::{ColType, Omit, TableBuilder, TableDef};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

pub struct CopyDecoder {
    builder: TableBuilder,
    types: Vec<ColType>,
    /// Bytes of an incomplete header or tuple carried over from the previous chunk.
    carry: Vec<u8>,
    header_done: bool,
    trailer_seen: bool,
    /// Bytes consumed so far, for error messages.
    offset: u64,
}

impl CopyDecoder {
    pub fn new(def: &'static TableDef, batch_rows: usize) -> Self {
        Self::omitting(def, batch_rows, &[])
    }

    /// A decoder that drops the values of the columns in `omit` (see
    /// [`TableBuilder::omitting`]).
    pub fn omitting(def: &'static TableDef, batch_rows: usize, omit: Omit) -> Self {
        CopyDecoder {
            builder: TableBuilder::omitting(def, batch_rows, omit),
            types: def.columns.iter().map(|c| c.ty).collect(),
            carry: Vec::new(),
            header_done: false,
            trailer_seen: false,
            offset: 0,
        }
    }

    /// Rows decoded so far.
    pub fn rows(&self) -> usize {
        self.builder.len()
    }

    /// Decodes every complete tuple in `chunk` (after any carried-over bytes).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.carry.is_empty() {
            let used = self.decode(chunk)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            self.carry.extend_from_slice(chunk);
            let carry = std::mem::take(&mut self.carry);
            let used = self.decode(&carry)?;
            self.carry = carry;
            self.carry.drain(..used);
        }
        Ok(())
    }

    /// The rows decoded so far, as a frame; the decoder goes on with the stream after them. A
    /// row cut by the end of a chunk is carried over, never handed out in part.
    pub fn take(&mut self) -> Result<DataFrame, String> {
        self.builder.take().map_err(|e| e.to_string())
    }

    /// Ends the stream: it must have closed with the trailer and nothing after it. Gives the
    /// rows not taken yet.
    pub fn finish(&mut self) -> Result<DataFrame, String> {
        if !self.trailer_seen {
            return Err(format!(
                "COPY stream ended after {} bytes without its trailer (truncated)",
                self.offset + self.carry.len() as u64
            ));
        }
        self.take()
    }

    /// Decodes from `buf`; returns how many bytes were consumed (whole units only).
    fn decode(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < 19 {
                return Ok(0);
            }
            if &buf[..11] != SIGNATURE {
                return Err("COPY stream does not start with the binary signature".into());
            }
            let ext = be_u32(&buf[15..19]) as usize;
            if buf.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        while pos < buf.len() {
            if self.trailer_seen {
                return Err(format!(
                    "data after the COPY trailer at byte {}",
                    self.offset + pos as u64
                ));
            }
            match self.tuple(&buf[pos..])? {
                Some(used) => pos += used,
                None => break,
            }
        }
        self.offset += pos as u64;
        Ok(pos)
    }

    /// Decodes one tuple at the start of `buf`, or returns `None` if it is not complete yet.
    fn tuple(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let nfields = i16::from_be_bytes([buf[0], buf[1]]);
        if nfields == -1 {
            self.trailer_seen = true;
            return Ok(Some(2));
        }
        if nfields as usize != self.types.len() {
            return Err(format!(
                "row at byte {} has {nfields} fields, expected {}",
                self.offset,
                self.types.len()
            ));
        }
        // First pass: is the whole tuple here, and is every length plausible?
        let mut pos = 2;
        for (i, ty) in self.types.iter().enumerate() {
            let Some(len_bytes) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            pos += 4;
            if len == -1 {
                continue;
            }
            let expected = match ty {
                ColType::I32 => Some(4),
                ColType::I64 => Some(8),
                ColType::Bool => Some(1),
                ColType::Str => None,
            };
            if len < 0 || expected.is_some_and(|e| e != len) {
                return Err(format!(
                    "field {} of the row at byte {} has length {len}, which does not fit `{}`",
                    i + 1,
                    self.offset,
                    self.builder.def().columns[i].name
                ));
            }
            pos += len as usize;
            if pos > buf.len() {
                return Ok(None);
            }
        }
        // Second pass: the tuple is complete; append every field.
        let mut p = 2;
        for (i, ty) in self.types.iter().enumerate() {
            let len = i32::from_be_bytes([buf[p], buf[p + 1], buf[p + 2], buf[p + 3]]);
            p += 4;
            if len == -1 {
                match ty {
                    ColType::I32 => self.builder.i32(i, None),
                    ColType::I64 => self.builder.i64(i, None),
                    ColType::Bool => self.builder.bool(i, None),
                    ColType::Str => self.builder.str(i, None),
                }
                continue;
            }
            let v = &buf[p..p + len as usize];
            p += len as usize;
            match ty {
                ColType::I32 => self
                    .builder
                    .i32(i, Some(i32::from_be_bytes([v[0], v[1], v[2], v[3]]))),
                ColType::I64 => self.builder.i64(
                    i,
                    Some(i64::from_be_bytes([
                        v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                    ])),
                ),
                ColType::Bool => self.builder.bool(i, Some(v[0] != 0)),
                ColType::Str => {
                    let s = std::str::from_utf8(v).map_err(|_| {
                        format!(
                            "field `{}` of the row at byte {} is not UTF-8",
                            self.builder.def().columns[i].name,
                            self.offset
                        )
                    })?;
                    self.builder.str(i, Some(s));
                }
            }
        }
        self.builder.end_row();
        Ok(Some(p))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Encodes rows in the binary COPY format; used by `sample --into` and by tests of the decoder.
pub struct CopyEncoder {
    pub buf: Vec<u8>,
}

impl Default for CopyEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyEncoder {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0u32.to_be_bytes()); // flags
        buf.extend_from_slice(&0u32.to_be_bytes()); // header extension length
        CopyEncoder { buf }
    }

    pub fn start_row(&mut self, nfields: i16) {
        self.buf.extend_from_slice(&nfields.to_be_bytes());
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    pub fn i32(&mut self, v: Option<i32>) {
        match v {
            Some(v) => {
                self.buf.extend_from_slice(&4i32.to_be_bytes());
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
            None => self.null(),
        }
    }

    pub fn i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.buf.extend_from_slice(&8i32.to_be_bytes());
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: Option<bool>) {
        match v {
            Some(v) => {
                self.buf.extend_from_slice(&1i32.to_be_bytes());
                self.buf.push(u8::from(v));
            }
            None => self.null(),
        }
    }

    pub fn str(&mut self, v: Option<&str>) {
        match v {
            Some(v) => {
                self.buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
                self.buf.extend_from_slice(v.as_bytes());
            }
            None => self.null(),
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::STEP_OUTPUTS;

    fn encoded() -> Vec<u8> {
        let mut e = CopyEncoder::new();
        for i in 0..5 {
            e.start_row(4);
            e.i32(Some(i));
            e.i32(Some(i * 10));
            e.str(Some("out"));
            e.str(if i % 2 == 0 {
                None
            } else {
                Some("/nix/store/x")
            });
        }
        e.finish()
    }

    #[test]
    fn decodes_whatever_the_chunking() {
        let bytes = encoded();
        for chunk in [1, 2, 3, 7, 19, 64, bytes.len()] {
            let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
            for c in bytes.chunks(chunk) {
                d.feed(c).unwrap();
            }
            let df = d.finish().unwrap();
            assert_eq!(df.height(), 5, "chunk {chunk}");
            assert_eq!(df.column("path").unwrap().null_count(), 3);
            STEP_OUTPUTS.check(&df).unwrap();
        }
    }

    /// Rows taken in pieces while the stream goes on are the whole stream's rows, each once and
    /// in order, wherever the chunks cut the rows and the pieces are taken.
    #[test]
    fn pieces_taken_along_the_way_add_up_to_the_stream() {
        let bytes = encoded();
        let mut whole = CopyDecoder::new(&STEP_OUTPUTS, 2);
        whole.feed(&bytes).unwrap();
        let whole = whole.finish().unwrap();
        for chunk in [1, 3, 7, 19, bytes.len()] {
            for every in [1, 2, 5] {
                let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
                let mut pieces: Vec<DataFrame> = Vec::new();
                for c in bytes.chunks(chunk) {
                    d.feed(c).unwrap();
                    if d.rows() >= every {
                        pieces.push(d.take().unwrap());
                    }
                }
                pieces.push(d.finish().unwrap());
                let mut got = pieces.remove(0);
                for p in pieces {
                    got.vstack_mut_owned(p).unwrap();
                }
                assert!(got.equals_missing(&whole), "chunk {chunk}, every {every}");
            }
        }
    }

    #[test]
    fn omitted_columns_are_dropped_as_they_arrive_and_read_as_nulls() {
        let bytes = encoded();
        let mut full = CopyDecoder::new(&STEP_OUTPUTS, 2);
        full.feed(&bytes).unwrap();
        let full = full.finish().unwrap();
        let mut lean = CopyDecoder::omitting(&STEP_OUTPUTS, 2, &[("step_outputs", "path")]);
        lean.feed(&bytes).unwrap();
        let lean = lean.finish().unwrap();
        STEP_OUTPUTS.check(&lean).unwrap();
        let path = lean.column("path").unwrap();
        assert_eq!(path.null_count(), 5);
        // A column of nulls that holds no data, not a column of five null values.
        assert!(
            matches!(path, polars::prelude::Column::Scalar(_)),
            "{path:?}"
        );
        for c in ["build", "stepnr", "name"] {
            assert!(
                full.column(c)
                    .unwrap()
                    .equals_missing(lean.column(c).unwrap())
            );
        }
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let bytes = encoded();
        for cut in 0..bytes.len() {
            let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
            d.feed(&bytes[..cut]).unwrap();
            assert!(d.finish().is_err(), "cut at {cut} must not look complete");
        }
        let mut bad = bytes.clone();
        bad[20] = 9; // field count of the first row
        let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
        assert!(d.feed(&bad).is_err());
        let mut d = CopyDecoder::new(&STEP_OUTPUTS, 2);
        assert!(d.feed(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0").is_err());
    }
}
