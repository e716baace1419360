//! Encoding and decoding a steady-state content message in both dialects.
//!
//! The message: 100 bytes of content, 10 causal-history entries (64-hex ids,
//! 32-byte hints, sender ids) and a bloom filter of 18 752 bytes (spec: raw
//! words) or 18 768 bytes (nim: the nested protobuf, here just bytes). The
//! baseline copies 18 752 bytes into a fresh `Vec`: encoding cannot be much
//! faster than that.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sds::wire::{decode, encode, encode_into, Dialect, HistoryEntry, Limits, Message};

fn hex_id(i: u64) -> String {
    (0..4)
        .map(|j| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ j))
        .collect()
}

fn message(bloom_len: usize) -> Message {
    let bloom: Vec<u8> = (0..bloom_len).map(|i| (i * 31 % 251) as u8).collect();
    Message {
        sender_id: "participant-A".into(),
        message_id: hex_id(1000),
        channel_id: "test-channel".into(),
        lamport_timestamp: Some(1_700_000_000_000),
        causal_history: (0..10)
            .map(|i| HistoryEntry {
                message_id: hex_id(i),
                retrieval_hint: Some(Bytes::from(vec![i as u8; 32])),
                sender_id: Some(format!("participant-{}", (b'A' + (i % 3) as u8) as char)),
            })
            .collect(),
        bloom_filter: Some(Bytes::from(bloom)),
        repair_request: Vec::new(),
        content: Some(Bytes::from((0..100u8).collect::<Vec<_>>())),
    }
}

fn bench(c: &mut Criterion) {
    let cases = [
        (Dialect::Spec, "spec", 18_752),
        (Dialect::Nim, "nim", 18_768),
    ];
    let mut g = c.benchmark_group("wire");
    for (dialect, name, bloom_len) in cases {
        let msg = message(bloom_len);
        let bytes = Bytes::from(encode(&msg, dialect).unwrap());
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| encode(black_box(&msg), dialect).unwrap())
        });
        let mut buf = Vec::with_capacity(bytes.len());
        g.bench_function(format!("encode_into_reused/{name}"), |b| {
            b.iter(|| {
                buf.clear();
                encode_into(black_box(&msg), dialect, &mut buf).unwrap();
                black_box(buf.len())
            })
        });
        let limits = Limits::default();
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| decode(black_box(bytes.clone()), &limits).unwrap())
        });
    }
    let bloom = vec![0x5au8; 18_752];
    g.throughput(Throughput::Bytes(bloom.len() as u64));
    g.bench_function("baseline/copy_18752_into_fresh_vec", |b| {
        b.iter(|| black_box(&bloom[..]).to_vec())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
