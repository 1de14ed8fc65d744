//! Fork-join rounds for the aggregator's parallel steps (merge, sort, encode).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs every job at once, the first on the calling thread and each other on a thread of
/// its own, and returns their outcomes in job order. The caller works instead of waiting,
/// and a round starts and wakes one thread fewer: at a million series there are thousands
/// of rounds, and a woken thread takes tens of microseconds to get a core.
pub fn fork_join<T, F>(jobs: impl IntoIterator<Item = F>) -> Vec<std::thread::Result<T>>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let mut jobs = jobs.into_iter();
    let Some(first) = jobs.next() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = jobs.map(|job| scope.spawn(job)).collect();
        let mut outcomes = vec![catch_unwind(AssertUnwindSafe(first))];
        outcomes.extend(others.into_iter().map(|h| h.join()));
        outcomes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_come_in_job_order_and_the_first_runs_here() {
        let here = std::thread::current().id();
        let ids = fork_join((0..4).map(|i| move || (i, std::thread::current().id())));
        let ids: Vec<_> = ids.into_iter().map(|r| r.ok()).collect();
        assert_eq!(
            ids.iter().flatten().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(ids[0].map(|(_, t)| t), Some(here));
        assert!(ids[1..].iter().flatten().all(|(_, t)| *t != here));
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_others_finish() {
        let outcomes = fork_join([
            Box::new(|| -> u8 { panic!("first") }) as Box<dyn FnOnce() -> u8 + Send>,
            Box::new(|| 2),
        ]);
        assert!(outcomes[0].is_err());
        assert_eq!(outcomes[1].as_ref().ok(), Some(&2));
        assert!(fork_join(Vec::<fn() -> u8>::new()).is_empty());
    }
}
