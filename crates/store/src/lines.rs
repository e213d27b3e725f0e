//! NDJSON objects as batches of lines, with bounded memory: the object is
//! fetched in ranges (of the version listed), decompressed (gzip or zstd,
//! told by its first bytes) and cut into lines on a blocking thread, and
//! handed over in batches of at most `batch_rows` lines and about
//! `batch_bytes` bytes. A line longer than `batch_bytes` makes a batch of
//! its own, whatever its size: there is no block size a record must fit in.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, LargeBinaryArray, RecordBatch};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::StreamExt;
use object_store::GetOptions;

use crate::{BatchStream, InputObject, Result, StoreError};

/// The column holding the line's bytes, with its `\n` ([`trim_line`] takes it off).
pub const LINE: &str = "line";
/// The column holding the byte offset of the line in the decompressed object.
pub const OFFSET: &str = "offset";

/// The schema of [`open_lines`]' batches.
pub fn lines_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(LINE, DataType::LargeBinary, false),
        Field::new(OFFSET, DataType::Int64, false),
    ]))
}

/// How an object's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Gzip,
    Zstd,
}

impl Codec {
    /// By the magic bytes (`1f 8b`, `28 b5 2f fd`); anything else is plain.
    pub fn sniff(head: &[u8]) -> Codec {
        if head.starts_with(&[0x1f, 0x8b]) {
            Codec::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Codec::Zstd
        } else {
            Codec::Plain
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Plain => "plain",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// Fetched ranges waiting for the decompressing thread (besides the two
/// being fetched).
const FETCHED_AHEAD: usize = 1;
/// The object is fetched in ranges of this size, two at a time: one GET
/// per range rather than a stream of small chunks (object_store's local
/// files come 8 KiB per message, a thread wake-up each).
const RANGE_BYTES: u64 = 8 << 20;
/// Batches of lines waiting for the consumer.
const BATCHES_AHEAD: usize = 2;

/// Opens `obj` as a stream of batches of its lines ([`lines_schema`]).
/// Every line is in a batch, blank ones included, so a line's number is
/// its row number in the object (plus one). Lines end with `\n` or `\r\n`
/// (or `\r` alone, in a file whose first line ends so); a UTF-8 byte
/// order mark at the start is skipped.
pub async fn open_lines(obj: &InputObject, batch_rows: usize, batch_bytes: usize) -> Result<BatchStream> {
    let uri = obj.uri();
    let (store, path, size) = (obj.location.store().clone(), obj.path.clone(), obj.size);
    let (u, e_tag) = (uri.clone(), obj.e_tag.clone());
    let fetch = move |r: std::ops::Range<u64>| {
        let (store, path, uri) = (store.clone(), path.clone(), u.clone());
        let opts = GetOptions { range: Some(r.into()), if_match: e_tag.clone(), ..Default::default() };
        async move {
            let get = async { store.get_opts(&path, opts).await?.bytes().await };
            get.await.map_err(|e| StoreError::ObjectStore { op: "get", uri, source: e })
        }
    };
    let mut ranges = (0..size).step_by(RANGE_BYTES as usize).map(move |s| s..(s + RANGE_BYTES).min(size));
    // the first range here, so that a missing object fails the open
    let first = match ranges.next() {
        Some(r) => Some(fetch.clone()(r).await?),
        None => None,
    };
    let (btx, brx) = tokio::sync::mpsc::channel::<Result<Bytes>>(FETCHED_AHEAD);
    tokio::spawn(async move {
        if let Some(b) = first
            && btx.send(Ok(b)).await.is_err()
        {
            return;
        }
        let mut body = futures::stream::iter(ranges).map(fetch).buffered(2);
        while let Some(b) = body.next().await {
            let failed = b.is_err();
            if btx.send(b).await.is_err() || failed {
                return;
            }
        }
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(BATCHES_AHEAD);
    tokio::task::spawn_blocking(move || {
        let error = Arc::new(Mutex::new(None));
        let fetched = Fetched { rx: brx, cur: Bytes::new(), error: error.clone() };
        let mut cut = Cutter {
            uri,
            tx,
            batch_rows: batch_rows.max(1),
            batch_bytes: batch_bytes.max(1),
            offset: 0,
            fetch_error: error,
        };
        if let Err(e) = cut.run(fetched) {
            let _ = cut.tx.blocking_send(Err(e));
        }
    });
    Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }).boxed())
}

/// The fetched bytes as a `Read` for the decompressor; a fetch error is
/// kept (in `error`) and reported in place of the I/O error it becomes.
struct Fetched {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes>>,
    cur: Bytes,
    error: Arc<Mutex<Option<StoreError>>>,
}

impl Read for Fetched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return Err(std::io::Error::other("fetching the object failed"));
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Cuts the decompressed bytes into batches of lines.
struct Cutter {
    uri: String,
    tx: tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    batch_rows: usize,
    batch_bytes: usize,
    /// Decompressed bytes handed over so far.
    offset: u64,
    /// A fetch error behind a failed read.
    fetch_error: Arc<Mutex<Option<StoreError>>>,
}

impl Cutter {
    fn run(&mut self, fetched: Fetched) -> Result<()> {
        let mut raw = BufReader::with_capacity(1 << 20, fetched);
        let head = match raw.fill_buf() {
            Ok(h) => h,
            Err(e) => return Err(self.error(Codec::Plain, 0, e)),
        };
        let codec = Codec::sniff(head);
        let mut reader: Box<dyn Read + Send> = match codec {
            Codec::Plain => Box::new(raw),
            Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Codec::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| self.error(codec, 0, e))?;
                // files written with --long need a window beyond the default 128 MiB
                d.window_log_max(31).map_err(|e| self.error(codec, 0, e))?;
                Box::new(d)
            }
        };
        let mut data: Vec<u8> = Vec::with_capacity(self.batch_bytes + (64 << 10));
        let mut want = self.batch_bytes;
        let mut eof = false;
        // where the search for a newline resumes in `data`
        let mut searched = 0;
        // lines end with `\n` (or `\r\n`), or with `\r` alone in a file
        // whose first line does
        let mut sep = None;
        loop {
            // the buffer is zeroed once per fill, not once per read (reads
            // may be 8 KiB each)
            let mut filled = data.len();
            if filled < want && !eof {
                data.resize(want.max(filled + (64 << 10)), 0);
            }
            while filled < data.len() && filled < want && !eof {
                match reader.read(&mut data[filled..]) {
                    Ok(0) => eof = true,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.error(codec, filled as u64, e)),
                }
            }
            data.truncate(filled);
            if sep.is_none() {
                // a UTF-8 byte order mark is not part of the first line
                if self.offset == 0 && data.starts_with(b"\xEF\xBB\xBF") {
                    data.drain(..3);
                    self.offset = 3;
                }
                sep = match memchr::memchr2(b'\n', b'\r', &data) {
                    Some(p) if data[p] == b'\r' && p + 1 < data.len() && data[p + 1] != b'\n' => Some(b'\r'),
                    Some(p) if data[p] == b'\r' && p + 1 == data.len() && !eof => None, // read on to see
                    Some(_) => Some(b'\n'),
                    None if eof => Some(b'\n'),
                    None => None, // decided when a line end is read
                };
            }
            let nl = sep.unwrap_or(b'\n');
            // the batch ends after its batch_rows-th newline, or its last one
            let mut ends = Vec::new();
            for p in memchr::memchr_iter(nl, &data[searched..]) {
                ends.push(searched + p + 1);
                if ends.len() == self.batch_rows {
                    break;
                }
            }
            let cut = match ends.last() {
                Some(&end) => end,
                None if eof => data.len(),
                None => {
                    // a line longer than the batch: read on until it ends
                    searched = data.len();
                    want = data.len() * 2;
                    continue;
                }
            };
            if cut == 0 {
                return Ok(());
            }
            if ends.last() != Some(&cut) {
                ends.push(cut); // the last line, without a newline
            }
            let rest = data[cut..].to_vec();
            data.truncate(cut);
            let n = data.len() as u64;
            let batch = self.batch(data, &ends);
            self.offset += n;
            if self.tx.blocking_send(Ok(batch)).is_err() {
                return Ok(()); // the consumer stopped
            }
            if eof && rest.is_empty() {
                return Ok(());
            }
            data = rest;
            data.reserve(self.batch_bytes.saturating_sub(data.len()));
            want = self.batch_bytes;
            searched = 0;
        }
    }

    /// The batch of the lines of `data` ending (exclusive, after their
    /// newline) at `ends`; the values are `data` itself.
    fn batch(&self, data: Vec<u8>, ends: &[usize]) -> RecordBatch {
        let mut offsets = Vec::with_capacity(ends.len() + 1);
        offsets.push(0i64);
        offsets.extend(ends.iter().map(|&e| e as i64));
        let starts = Int64Array::from_iter_values(offsets[..ends.len()].iter().map(|&s| self.offset as i64 + s));
        let lines = LargeBinaryArray::new(OffsetBuffer::new(ScalarBuffer::from(offsets)), data.into(), None);
        RecordBatch::try_new(lines_schema(), vec![Arc::new(lines), Arc::new(starts)]).expect("the schema of lines")
    }

    fn error(&self, codec: Codec, at: u64, e: std::io::Error) -> StoreError {
        if let Some(fetch) = self.fetch_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return fetch;
        }
        StoreError::Decompress {
            uri: self.uri.clone(),
            codec: codec.name(),
            offset: self.offset + at,
            reason: e.to_string(),
        }
    }
}

/// A line of a batch without its `\n` and a `\r` before it.
pub fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use std::io::Write;

    async fn lines_of(bytes: Vec<u8>, batch_rows: usize, batch_bytes: usize) -> Vec<(String, i64)> {
        let loc = crate::Location::parse("memory:///lines-test/").unwrap();
        loc.put_bytes("x", bytes).await.unwrap();
        let obj = crate::list_inputs("memory:///lines-test/x").await.unwrap().remove(0);
        let mut s = open_lines(&obj, batch_rows, batch_bytes).await.unwrap();
        let mut out = Vec::new();
        while let Some(b) = s.next().await {
            let b = b.unwrap();
            let (l, o) = (b.column(0).as_binary::<i64>(), b.column(1).as_primitive::<arrow_array::types::Int64Type>());
            for i in 0..l.len() {
                out.push((String::from_utf8_lossy(trim_line(l.value(i))).into_owned(), o.value(i)));
            }
        }
        out
    }

    #[tokio::test]
    async fn lines_come_whole_whatever_the_codec_ending_and_size() {
        let text = "{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}";
        let want =
            vec![("{\"a\":1}".to_string(), 0), (String::new(), 9), ("{\"b\":2}".into(), 10), ("{\"c\":3}".into(), 18)];
        assert_eq!(lines_of(text.into(), 8192, 4 << 20).await, want);
        // one line per batch, and batches smaller than a line
        assert_eq!(lines_of(text.into(), 1, 3).await, want);
        // gzip of two members (as Firehose concatenates them), and zstd
        let mut gz = Vec::new();
        for part in [&text[..10], &text[10..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            gz.extend(e.finish().unwrap());
        }
        assert_eq!(lines_of(gz, 2, 5).await, want);
        assert_eq!(lines_of(zstd::encode_all(text.as_bytes(), 3).unwrap(), 8192, 4 << 20).await, want);
        // `\r` alone ends lines when the first line ends so; a BOM is skipped
        let cr = lines_of(b"\xEF\xBB\xBF{}\r{}\r[]".to_vec(), 8192, 1 << 20).await;
        assert_eq!(cr, [("{}".to_string(), 3), ("{}".into(), 6), ("[]".into(), 9)]);
        // a line of 3 MB in batches of 64 KiB
        let long = format!("{{\"x\":\"{}\"}}\n{{}}\n", "y".repeat(3_000_000));
        let got = lines_of(long.into_bytes(), 8192, 64 << 10).await;
        assert_eq!((got.len(), got[0].0.len(), got[1].1), (2, 3_000_008, 3_000_009));
        // bytes that are not the gzip they claim to be
        let loc = crate::Location::parse("memory:///lines-test/").unwrap();
        loc.put_bytes("bad.gz", vec![0x1f, 0x8b, 1, 2, 3]).await.unwrap();
        let obj = crate::list_inputs("memory:///lines-test/bad.gz").await.unwrap().remove(0);
        let e = open_lines(&obj, 10, 10).await.unwrap().next().await.unwrap().unwrap_err().to_string();
        assert!(e.starts_with("gzip data of memory:///lines-test/bad.gz does not decompress"), "{e}");
        // an object overwritten after it was listed is not read as a mix of versions
        loc.put_bytes("v", b"{}\n".repeat(10)).await.unwrap();
        let obj = crate::list_inputs("memory:///lines-test/v").await.unwrap().remove(0);
        assert!(obj.e_tag.is_some());
        loc.put_bytes("v", b"[]\n".repeat(10)).await.unwrap();
        match open_lines(&obj, 10, 10).await {
            Err(e @ StoreError::ObjectStore { .. }) => {
                assert!(e.to_string().contains("memory:///lines-test/v"), "{e}")
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a changed object was read"),
        }
    }
}
