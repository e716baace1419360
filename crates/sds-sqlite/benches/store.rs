//! Criterion: one persisted operation (a change set shaped like a receive or
//! a send) with synchronous NORMAL and FULL, on a log of 1 000 / 10 000 /
//! 100 000 messages. For ops/s and bytes written per operation, run the
//! `store_report` example.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use sds::store::Store;
use sds_sqlite::{Options, SqliteStore, Synchronous};
use std::time::Duration;

mod shapes;

fn bench(c: &mut Criterion) {
    let dir = std::env::var_os("SDS_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for (sync, name) in [(Synchronous::Normal, "normal"), (Synchronous::Full, "full")] {
        let mut g = c.benchmark_group(format!("sqlite_{name}"));
        g.measurement_time(Duration::from_secs(if sync == Synchronous::Full {
            4
        } else {
            3
        }));
        g.sample_size(20);
        for size in [1_000u64, 10_000, 100_000] {
            if sync == Synchronous::Full && size != 10_000 {
                continue; // fsync dominates; the log size does not matter there
            }
            let tmp = tempfile::tempdir_in(&dir).expect("temp dir");
            let path = tmp.path().join("bench.db");
            let opts = Options {
                synchronous: sync,
                ..Options::default()
            };
            let mut store = SqliteStore::open_with(&path, &opts).expect("open");
            shapes::prefill(&mut store, "chat", size).expect("prefill");
            let mut i = size;
            g.bench_with_input(BenchmarkId::new("receive", size), &size, |b, _| {
                b.iter_batched(
                    || {
                        i += 1;
                        shapes::receive("chat", i)
                    },
                    |cs| store.apply(&cs).expect("apply"),
                    BatchSize::SmallInput,
                )
            });
            g.bench_with_input(BenchmarkId::new("send", size), &size, |b, _| {
                b.iter_batched(
                    || {
                        i += 1;
                        shapes::send("chat", i)
                    },
                    |cs| store.apply(&cs).expect("apply"),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
