//! Hot paths of the protocol core: one send, and one in-order receive (from
//! bytes, or already decoded), in a channel that already holds 1 000
//! messages (steady state: full causal history, a populated bloom filter).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sds::{Config, Participant};

const T0: u64 = 1_700_000_000_000;

fn id(i: u64) -> String {
    format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn warmed(name: &str) -> Participant {
    let mut p = Participant::new(name, Config::default()).expect("config");
    for i in 0..1_000 {
        p.send("c", &id(i), Bytes::from(vec![7u8; 100]), T0 + i)
            .expect("send");
        while p.poll_transmit().is_some() {}
    }
    while p.poll_event().is_some() {}
    p
}

fn bench(c: &mut Criterion) {
    let content = Bytes::from(vec![1u8; 100]);
    let mut a = warmed("a");
    let mut n = 10_000u64;
    c.bench_function("participant/send (steady state)", |b| {
        b.iter(|| {
            n += 1;
            a.send("c", &id(n), content.clone(), T0 + n).expect("send");
            a.poll_transmit().expect("bytes")
        })
    });

    // A stream of messages from one sender, received in order by another.
    let mut src = warmed("src");
    let msgs: Vec<Bytes> = (0..20_000u64)
        .map(|i| {
            src.send("c", &id(1_000_000 + i), content.clone(), T0 + 2_000 + i)
                .expect("send");
            src.poll_transmit().expect("bytes").bytes
        })
        .collect();
    c.bench_function("participant/receive in order (steady state)", |b| {
        b.iter_batched(
            || Participant::new("b", Config::default()).expect("config"),
            |mut rx| {
                for m in &msgs[..200] {
                    rx.receive(m.clone(), None, T0 + 3_000).expect("receive");
                    while rx.poll_event().is_some() {}
                }
                rx
            },
            BatchSize::LargeInput,
        )
    });

    // The same, decoded once beforehand (as the simulator does for a
    // broadcast's many receivers): the difference is the decoding, and the
    // copy of the content, which `receive_decoded` keeps as given.
    let decoded: Vec<sds::wire::Decoded> = msgs[..200]
        .iter()
        .map(|m| sds::wire::decode(m.clone(), &Config::default().limits).expect("decode"))
        .collect();
    c.bench_function("participant/receive_decoded in order (steady state)", |b| {
        b.iter_batched(
            || Participant::new("b", Config::default()).expect("config"),
            |mut rx| {
                for d in &decoded {
                    rx.receive_decoded(&d.message.borrowed(), d.dialect, None, T0 + 3_000)
                        .expect("receive");
                    while rx.poll_event().is_some() {}
                }
                rx
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
