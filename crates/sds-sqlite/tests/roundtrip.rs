//! Store-level round trips: the SQLite store holds exactly what the in-memory
//! reference store holds for the same sequence of change sets, across reopens.

mod common;

use bytes::Bytes;
use common::{log_rows, meta, normalize, Gen};
use sds::store::*;
use sds_sqlite::SqliteStore;

/// Checks the orders `load` documents: channels by id, log and outgoing by
/// seq, remembered by kind then seq, the rest by id.
fn assert_load_order(snaps: &[ChannelSnapshot]) {
    assert!(snaps.windows(2).all(|w| w[0].channel < w[1].channel));
    for s in snaps {
        assert!(s
            .log
            .windows(2)
            .all(|w| (w[0].seq, &w[0].id) < (w[1].seq, &w[1].id)));
        assert!(s
            .outgoing
            .windows(2)
            .all(|w| (w[0].seq, &w[0].id) < (w[1].seq, &w[1].id)));
        assert!(s.incoming.windows(2).all(|w| w[0].id < w[1].id));
        assert!(s.repair_out.windows(2).all(|w| w[0].id < w[1].id));
        assert!(s.repair_in.windows(2).all(|w| w[0].id < w[1].id));
        assert!(s
            .remembered
            .windows(2)
            .all(|w| (w[0].kind, w[0].seq, &w[0].id) < (w[1].kind, w[1].seq, &w[1].id)));
    }
}

#[test]
fn same_as_memory_store_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    for seed in 1..=4u64 {
        let _ = std::fs::remove_file(&path);
        let mut g = Gen::new(seed);
        let mut mem = MemoryStore::new();
        let mut sql = SqliteStore::open(&path).unwrap();
        for step in 0..300 {
            if g.chance(3) {
                let c = ["chat", "", "nothing-there"][g.below(3) as usize];
                mem.drop_channel(c).unwrap();
                sql.drop_channel(c).unwrap();
            } else {
                let cs = g.change_set();
                mem.apply(&cs).unwrap();
                sql.apply(&cs).unwrap();
            }
            if step % 25 == 24 {
                drop(sql);
                sql = SqliteStore::open(&path).unwrap();
            }
            if step % 5 == 0 {
                let got = sql.load().unwrap();
                assert_load_order(&got);
                assert_eq!(
                    normalize(got),
                    normalize(mem.load().unwrap()),
                    "seed {seed} step {step}"
                );
            }
        }
        drop(sql);
        let mut sql = SqliteStore::open(&path).unwrap();
        assert_eq!(
            normalize(sql.load().unwrap()),
            normalize(mem.load().unwrap())
        );
    }
}

/// Enough change sets that the journal is folded into the tables several
/// times (it is folded every 2 048 change sets or 4 MiB); loads (read-write
/// and read-only) replay what is not folded yet.
#[test]
fn same_as_memory_store_across_journal_folds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut g = Gen::new(99);
    let mut mem = MemoryStore::new();
    let mut sql = SqliteStore::open(&path).unwrap();
    for step in 0..5_000 {
        let cs = g.change_set();
        mem.apply(&cs).unwrap();
        sql.apply(&cs).unwrap();
        if step % 397 == 0 || step == 2_047 || step == 2_048 {
            let want = normalize(mem.load().unwrap());
            let got = sql.load().unwrap();
            assert_load_order(&got);
            assert_eq!(normalize(got), want, "step {step}");
            let ro = sds_sqlite::Options {
                read_only: true,
                ..sds_sqlite::Options::default()
            };
            let got = SqliteStore::open_with(&path, &ro).unwrap().load().unwrap();
            assert_eq!(normalize(got), want, "read-only, step {step}");
        }
        if step % 1_300 == 1_299 {
            drop(sql);
            sql = SqliteStore::open(&path).unwrap();
        }
    }
}

#[test]
fn empty_file_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path().join("new.db")).unwrap();
    assert_eq!(s.load().unwrap(), vec![]);
    s.apply(&ChangeSet::default()).unwrap();
    assert_eq!(s.load().unwrap(), vec![]);
}

#[test]
fn upsert_replaces_and_delete_of_missing_row_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path().join("s.db")).unwrap();
    s.apply(&log_rows("c", 0, 3, 10)).unwrap();
    let mut replace = log_rows("c", 1, 1, 20);
    replace.channels[0].log_upserts[0].seq = 99;
    replace.channels[0].log_upserts[0].hint = Some(Bytes::from_static(b"hint"));
    replace.channels[0].log_deletes = vec!["m0".into(), "never-there".into()];
    s.apply(&replace).unwrap();
    let snap = s.load().unwrap();
    let ids: Vec<_> = snap[0].log.iter().map(|r| (r.id.as_str(), r.seq)).collect();
    assert_eq!(ids, vec![("m2", 2), ("m1", 99)]); // ordered by seq
    assert_eq!(snap[0].log[1].message.len(), 20);
    assert_eq!(snap[0].log[1].hint.as_deref(), Some(&b"hint"[..]));
    assert_eq!(snap[0].meta, Some(meta(2)));
}

#[test]
fn drop_channel_removes_only_that_channel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut g = Gen::new(9);
    let mut s = SqliteStore::open(&path).unwrap();
    for _ in 0..20 {
        let mut a = g.channel_changes("a");
        a.meta = Some(g.meta());
        let mut b = g.channel_changes("b");
        b.meta = Some(g.meta());
        s.apply(&ChangeSet {
            channels: vec![a, b],
        })
        .unwrap();
    }
    let before = s.load().unwrap();
    s.drop_channel("a").unwrap();
    drop(s);
    let after = SqliteStore::open(&path).unwrap().load().unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0], before[1]);
    // Dropping again, or a channel that never existed, is not an error.
    let mut s = SqliteStore::open(&path).unwrap();
    s.drop_channel("a").unwrap();
    s.drop_channel("zzz").unwrap();
}

#[test]
fn large_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let big = Bytes::from((0..200_000u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
    let rec = OutgoingRecord {
        id: "x".repeat(5_000),
        seq: 1,
        message: big.clone(),
        attempts: u32::MAX,
        last_sent: u64::MAX,
        resend_at: 0,
        ackers: (0..500).map(|i| format!("peer-{i}")).collect(),
    };
    let cs = ChangeSet {
        channels: vec![ChannelChanges {
            channel: "c".into(),
            outgoing_upserts: vec![rec.clone()],
            ..Default::default()
        }],
    };
    SqliteStore::open(&path).unwrap().apply(&cs).unwrap();
    let snap = SqliteStore::open(&path).unwrap().load().unwrap();
    assert_eq!(snap[0].meta, None);
    assert_eq!(snap[0].outgoing, vec![rec]);
}
