//! The invariant checker catches fabricated violations.

use sds_sim::{Checker, ViolationKind};

#[test]
fn delivery_before_dependency_is_caught() {
    let mut c = Checker::new(2);
    c.on_own_send(0, 0);
    c.on_own_send(0, 1); // #1 depends on #0
                         // Participant 1 delivers #1 before #0.
    assert!(!c.on_delivered(1, 1, &[0], &[], 100));
    assert_eq!(c.violation_count, 1);
    let v = &c.violations[0];
    assert_eq!(v.kind, ViolationKind::DeliveredBeforeDependency);
    assert_eq!((v.participant, v.message), (1, Some(1)));
    assert!(v.to_string().contains("#0"), "{v}");
}

#[test]
fn causal_order_passes() {
    let mut c = Checker::new(2);
    assert!(c.on_delivered(1, 0, &[], &[], 1));
    assert!(c.on_delivered(1, 1, &[0], &[], 2));
    assert!(c.on_delivered(1, 2, &[0, 1], &[], 3));
    assert_eq!(c.violation_count, 0);
}

#[test]
fn duplicate_delivery_is_caught() {
    let mut c = Checker::new(1);
    assert!(c.on_delivered(0, 5, &[], &[], 1));
    assert!(!c.on_delivered(0, 5, &[], &[], 2));
    assert_eq!(c.violations[0].kind, ViolationKind::DuplicateDelivery);
}

#[test]
fn lost_dependencies_are_accepted() {
    let mut c = Checker::new(1);
    // Listed as lost in the Delivered event.
    assert!(c.on_delivered(0, 2, &[1], &[1], 1));
    // Declared lost earlier (IrretrievablyLost), not listed.
    c.on_lost(0, 7);
    assert!(c.on_delivered(0, 8, &[7], &[], 2));
    assert_eq!(c.violation_count, 0);
}
