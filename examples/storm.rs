//! A retry storm, simulated: many callers, one dependency that falls over, open-loop arrivals.
#[path = "../tests/common/storm_sim.rs"]
mod sim;

use sim::{Failure, Scenario, Strategy};

fn main() {
    let rates: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rates = if rates.is_empty() {
        vec![100, 1000, 10_000]
    } else {
        rates
    };
    for rate in rates {
        for failure in [Failure::Total, Failure::Partial(0.3)] {
            println!("\n{rate}/s, {failure:?}\n{}", sim::HEADER);
            let scenario = Scenario::new(rate, failure);
            for s in Strategy::ALL {
                let o = sim::run(&scenario, s);
                println!("{} q={}", sim::row(&o), o.queued_at_recovery);
            }
        }
    }
}
