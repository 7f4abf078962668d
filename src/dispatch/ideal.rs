//! What a dispatcher with no delay would have started at one instant: the measure of dispatch
//! loss, written once for every source that estimates it (the sample's truth, the runner's
//! series, the derivation graph, the database-only bounds).
//!
//! At an instant, steps wait in classes (a machine type: a system, or a system with required
//! features) and machines have free slots (enabled, below `maxJobs`). Slot time is lost to
//! dispatch when a waiting step and a free slot that could take it exist at once. The slots that
//! could have been used are a matching between waiting steps and free slots; [`Ideal::claim`]
//! computes it greedily, the class with the fewest capable slots first, so a step that only few
//! machines can build is not crowded out of them by a step that any machine can build. For the
//! nested capabilities of real farms (a `big-parallel` machine can also build plain steps of its
//! system) this greedy order gives the maximum matching; where capabilities cross it is a lower
//! bound on it, within the largest class.

/// Which machines can build each class, and the order classes claim free slots in.
#[derive(Debug, Clone)]
pub struct Ideal {
    capable: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Ideal {
    /// `capable[c]`: the machines that can build class `c`; `max_jobs[m]`: machine `m`'s slots.
    pub fn new(capable: Vec<Vec<usize>>, max_jobs: &[f64]) -> Ideal {
        let slots = |c: usize| -> f64 { capable[c].iter().map(|&m| max_jobs[m]).sum() };
        let mut order: Vec<usize> = (0..capable.len()).collect();
        order.sort_by(|&a, &b| slots(a).total_cmp(&slots(b)).then(a.cmp(&b)));
        Ideal { capable, order }
    }

    pub fn classes(&self) -> usize {
        self.capable.len()
    }

    /// Matches `waiting[c]` steps against `free[m]` slots (both may be fractional: averages
    /// over an interval). Adds each machine's claimed slots to `claimed[m]` and returns the
    /// total. `free` is used as scratch and left with what no waiting step could take.
    pub fn claim(&self, waiting: &[f64], free: &mut [f64], claimed: &mut [f64]) -> f64 {
        let mut total = 0.0;
        for &c in &self.order {
            // NaN (a missing sample) claims nothing, like 0.
            let mut want = waiting.get(c).copied().filter(|w| *w > 0.0).unwrap_or(0.0);
            if want == 0.0 {
                continue;
            }
            for &m in &self.capable[c] {
                let take = want.min(free[m]);
                if take > 0.0 {
                    free[m] -= take;
                    claimed[m] += take;
                    total += take;
                    want -= take;
                    if want <= 0.0 {
                        break;
                    }
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Machine 0 builds plain and big-parallel steps, machine 1 only plain ones. Two waiting
    /// big-parallel steps must get machine 0's two free slots even though the plain class comes
    /// first in the list: the narrow class claims first.
    #[test]
    fn the_narrow_class_claims_its_few_machines_first() {
        let ideal = Ideal::new(vec![vec![0, 1], vec![0]], &[2.0, 4.0]);
        let mut free = [2.0, 1.0];
        let mut claimed = [0.0, 0.0];
        let total = ideal.claim(&[3.0, 2.0], &mut free, &mut claimed);
        assert_eq!(total, 3.0);
        assert_eq!(claimed, [2.0, 1.0]);
        assert_eq!(free, [0.0, 0.0]);
    }

    #[test]
    fn nothing_is_claimed_without_waiting_steps_or_free_slots() {
        let ideal = Ideal::new(vec![vec![0]], &[4.0]);
        let mut claimed = [0.0];
        assert_eq!(ideal.claim(&[0.0], &mut [3.0], &mut claimed), 0.0);
        assert_eq!(ideal.claim(&[5.0], &mut [0.0], &mut claimed), 0.0);
        assert_eq!(ideal.claim(&[f64::NAN], &mut [3.0], &mut claimed), 0.0);
        assert_eq!(ideal.claim(&[1.5], &mut [3.0], &mut claimed), 1.5);
    }
}
