//! Bloom filter costs at the default parameters (capacity 10 000, p 0.001)
//! with 64-hex-character ids, for both encodings.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sds::bloom::{BloomEncoding, BloomFilter, BloomLimits, BloomParams, BloomView, ItemHash};
use sds::hash;
use sha2::{Digest, Sha256};

/// `n` distinct 64-hex-character ids (hex sha256 of a counter, like `@waku/sds`'s ids).
fn ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| hex::encode(Sha256::digest(i.to_le_bytes())))
        .collect()
}

fn name(enc: BloomEncoding) -> &'static str {
    match enc {
        BloomEncoding::Spec => "spec",
        BloomEncoding::Nim => "nim",
    }
}

fn bench_hashes(c: &mut Criterion) {
    let id = ids(1).pop().unwrap();
    let id = id.as_bytes();
    let mut g = c.benchmark_group("hash");
    g.bench_function("nim_64", |b| {
        b.iter(|| hash::nim_string_hash(black_box(id)))
    });
    let id66 = [id, b" b"].concat();
    g.bench_function("nim_66", |b| {
        b.iter(|| hash::nim_string_hash(black_box(&id66)))
    });
    g.bench_function("nim_64_concat_suffix", |b| {
        b.iter(|| hash::nim_string_hash_concat(black_box(id), b" b"))
    });
    g.bench_function("murmur3_64", |b| {
        b.iter(|| hash::murmur3_x86_32(black_box(id), 0))
    });
    g.bench_function("murmur3_64_concat_suffix", |b| {
        b.iter(|| hash::murmur3_x86_32_concat(black_box(id), b" b", 0))
    });
    g.bench_function("sha256_prefix_64", |b| {
        b.iter(|| hash::sha256_prefix_u64(black_box(id)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let params = BloomParams::default();
    let ids = ids(20_000);
    let (inserted, absent) = ids.split_at(10_000);

    for enc in [BloomEncoding::Spec, BloomEncoding::Nim] {
        let mut g = c.benchmark_group(format!("bloom/{}", name(enc)));
        let hashes: Vec<ItemHash> = inserted
            .iter()
            .map(|id| ItemHash::new(enc, id.as_bytes()))
            .collect();
        let mut full = BloomFilter::new(enc, params);
        for h in &hashes {
            full.insert(h);
        }

        g.throughput(Throughput::Elements(1));
        g.bench_function("hash_id", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % inserted.len();
                ItemHash::new(enc, black_box(inserted[i].as_bytes()))
            })
        });
        g.bench_function("insert_id", |b| {
            let mut f = BloomFilter::new(enc, params);
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % inserted.len();
                f.insert_id(black_box(inserted[i].as_bytes()));
            })
        });
        g.bench_function("insert_hash", |b| {
            let mut f = BloomFilter::new(enc, params);
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % hashes.len();
                f.insert(black_box(&hashes[i]));
            })
        });
        g.bench_function("contains_id_present", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % inserted.len();
                full.contains_id(black_box(inserted[i].as_bytes()))
            })
        });
        g.bench_function("contains_id_absent", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % absent.len();
                full.contains_id(black_box(absent[i].as_bytes()))
            })
        });
        g.bench_function("contains_hash_present", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % hashes.len();
                full.contains(black_box(&hashes[i]))
            })
        });

        let mut wire = Vec::new();
        full.encode_into(&mut wire);
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("encode_into", |b| {
            let mut out = Vec::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                full.encode_into(black_box(&mut out));
            })
        });
        g.bench_function("decode_view", |b| {
            b.iter(|| {
                BloomView::decode(enc, black_box(&wire), &params, &BloomLimits::default()).unwrap()
            })
        });
        let view = BloomView::decode(enc, &wire, &params, &BloomLimits::default()).unwrap();
        g.throughput(Throughput::Elements(1));
        g.bench_function("view_contains_hash", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % hashes.len();
                view.contains(black_box(&hashes[i]))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench_hashes, bench);
criterion_main!(benches);
