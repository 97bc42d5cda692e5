//! Reading a `metrics_util` `DebuggingRecorder` in tests (`tests/metrics.rs`,
//! `tests/metrics_layers.rs`), by `#[path]`.
//!
//! Its snapshots are destructive (metrics-util 0.20 swaps counters and gauges to zero and
//! drains histograms), so a [`Reader`] keeps a running total: each read adds counter deltas
//! and appends histogram samples to what earlier reads saw. Gauges follow one of two
//! [`Gauges`] policies, since a gauge reads 0 both when set to 0 and when not written since
//! the last read.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A series' value: counters and gauges as numbers, histograms as their samples.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    N(f64),
    H(Vec<f64>),
}

/// How gauges are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauges {
    /// As their value in the latest snapshot: for tests that read a gauge right after it is
    /// written (a later read without a write shows 0).
    Latest,
    /// By group (a metric and its `name` label), for gauges always written together (the
    /// breaker's state gauges: one 1, the rest 0): a read in which one of a group is non-zero
    /// overwrites the group, and a read of all zeros keeps the group's last values.
    Grouped,
}

/// A running total of a `DebuggingRecorder`'s series, as `"metric{label=value,...}"` (labels
/// sorted) to their values.
pub struct Reader {
    snapshotter: Snapshotter,
    gauges: Gauges,
    total: RefCell<BTreeMap<String, V>>,
}

impl Reader {
    pub fn new(recorder: &DebuggingRecorder, gauges: Gauges) -> Self {
        Reader {
            snapshotter: recorder.snapshotter(),
            gauges,
            total: RefCell::default(),
        }
    }

    /// Every series read so far.
    pub fn read(&self) -> BTreeMap<String, V> {
        let mut total = self.total.borrow_mut();
        let mut groups: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let id = format!("{}{{{}}}", key.name(), labels.join(","));
            match value {
                DebugValue::Counter(n) => match total.entry(id).or_insert(V::N(0.0)) {
                    V::N(t) => *t += n as f64,
                    V::H(_) => unreachable!(),
                },
                DebugValue::Histogram(h) => match total.entry(id).or_insert(V::H(vec![])) {
                    V::H(t) => t.extend(h.into_iter().map(|x| x.into_inner())),
                    V::N(_) => unreachable!(),
                },
                DebugValue::Gauge(g) => match self.gauges {
                    Gauges::Latest => {
                        total.insert(id, V::N(g.into_inner()));
                    }
                    Gauges::Grouped => {
                        let name = key
                            .labels()
                            .find(|l| l.key() == "name")
                            .map(|l| l.value().to_owned());
                        let group = format!("{}/{:?}", key.name(), name);
                        groups.entry(group).or_default().push((id, g.into_inner()));
                    }
                },
            }
        }
        for (_, group) in groups {
            let written = group.iter().any(|(_, g)| *g != 0.0);
            for (id, g) in group {
                if written || !total.contains_key(&id) {
                    total.insert(id, V::N(g));
                }
            }
        }
        total.clone()
    }

    /// Every series read so far whose name starts with `prefix`.
    pub fn read_prefix(&self, prefix: &str) -> BTreeMap<String, V> {
        let mut all = self.read();
        all.retain(|id, _| id.starts_with(prefix));
        all
    }
}
