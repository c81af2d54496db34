use std::io::{Cursor, Read};

use flate2::read::{GzDecoder, MultiGzDecoder};

use super::*;

/// Several MB of CSV-like lines that do not compress to nothing: ids and
/// numbers from a small deterministic generator.
fn sample(bytes: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(bytes + 128);
    while out.len() < bytes {
        let line = format!(
            "evt_{:016x},dst_{:04},{},2026-05-01T12:{:02}:{:02}Z,\"{{\"\"amount\"\":{}}}\"\r\n",
            next(),
            next() % 50,
            next() % 7,
            next() % 60,
            next() % 60,
            next() % 100_000
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Feeds `data` in chunks of varying small sizes, taking after each write;
/// returns everything taken, how much of it came before `finish`, and the
/// largest single take.
fn compress(compression: Compression, data: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut compressor = Compressor::new(compression, "export.csv");
    let (mut taken, mut largest) = (Vec::new(), 0);
    let mut rest = data;
    let mut size = 1;
    while !rest.is_empty() {
        size = size * 7 % 8191 + 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        compressor.write(chunk).unwrap();
        let ready = compressor.take();
        largest = largest.max(ready.len());
        taken.extend_from_slice(&ready);
        rest = tail;
    }
    let before_finish = taken.len();
    taken.extend_from_slice(&compressor.finish().unwrap());
    (taken, before_finish, largest)
}

const MB: usize = 1 << 20;

#[test]
fn none_passes_bytes_through() {
    let data = sample(MB);
    let (out, before_finish, _) = compress(Compression::None, &data);
    assert_eq!(out, data);
    assert_eq!(before_finish, data.len());
}

#[test]
fn gzip_round_trips_and_streams() {
    let data = sample(6 * MB);
    let (out, before_finish, largest) = compress(Compression::Gzip, &data);
    assert!(
        out.len() < data.len() / 2,
        "compressed to {} of {}",
        out.len(),
        data.len()
    );

    let mut back = Vec::new();
    GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
    assert!(back == data, "gzip round trip");
    back.clear();
    MultiGzDecoder::new(&out[..])
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "multi-member gzip round trip");

    // Bounded: the output comes out as the input goes in, a little at a
    // time, not all at `finish`.
    assert!(
        before_finish > out.len() * 9 / 10,
        "only {before_finish} of {} before finish",
        out.len()
    );
    assert!(largest <= 256 * 1024, "a take of {largest} bytes");
}

#[test]
fn zip_holds_one_named_entry_and_streams() {
    let data = sample(6 * MB);
    let (out, before_finish, largest) = compress(Compression::Zip, &data);
    assert!(
        out.len() < data.len() / 2,
        "compressed to {} of {}",
        out.len(),
        data.len()
    );

    let mut archive = zip::ZipArchive::new(Cursor::new(&out)).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "export.csv");
    assert_eq!(entry.compression(), CompressionMethod::Deflated);
    assert_eq!(entry.size(), data.len() as u64);
    let mut back = Vec::new();
    entry.read_to_end(&mut back).unwrap();
    assert!(back == data, "zip round trip");

    assert!(
        before_finish > out.len() * 9 / 10,
        "only {before_finish} of {} before finish",
        out.len()
    );
    assert!(largest <= 256 * 1024, "a take of {largest} bytes");
}

#[test]
fn an_empty_stream_is_a_valid_empty_file() {
    let mut back = Vec::new();
    let gz = Compressor::new(Compression::Gzip, "e.csv")
        .finish()
        .unwrap();
    GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
    assert!(back.is_empty());

    let zip = Compressor::new(Compression::Zip, "e.csv").finish().unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    archive
        .by_name("e.csv")
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back.is_empty());

    assert!(
        Compressor::new(Compression::None, "e.csv")
            .finish()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_entry_name_zip_cannot_hold_fails_the_first_write() {
    let name = "n".repeat(70_000);
    let mut compressor = Compressor::new(Compression::Zip, &name);
    assert!(compressor.write(b"x").is_err());
}

#[test]
fn a_compressor_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    for compression in [Compression::None, Compression::Gzip, Compression::Zip] {
        send(&Compressor::new(compression, "a"));
    }
}

#[test]
fn names_and_types() {
    assert_eq!(Compression::None.content_type(), None);
    assert_eq!(Compression::Gzip.content_type(), Some("application/gzip"));
    assert_eq!(Compression::Zip.content_type(), Some("application/zip"));
    assert_eq!(Compression::Gzip.suffix(), ".gz");
}
