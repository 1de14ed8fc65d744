//! Work sharing for the aggregator's parallel steps (merge, sort, encode).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// Runs `jobs` on `threads` threads, the calling thread one of them, and returns their
/// outcomes in job order. Each thread takes the next job not yet taken until none is left,
/// so a helper that gets a core late (on two cores it often waits for a decoder thread's
/// time slice) takes fewer jobs instead of making the caller wait for its share; with
/// several jobs per thread, no thread waits for more than about one job at the end.
pub fn share<T, F>(jobs: Vec<F>, threads: usize) -> Vec<std::thread::Result<T>>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    share_between(jobs, threads, || {})
}

/// Like `share`, and the calling thread runs `between` after each job it ran (to write out
/// what is finished while the others work).
pub fn share_between<T, F>(
    jobs: Vec<F>,
    threads: usize,
    mut between: impl FnMut(),
) -> Vec<std::thread::Result<T>>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let outcomes: Mutex<Vec<Option<std::thread::Result<T>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    let run_next = || {
        let next = queue.lock().map(|mut q| q.next()).ok().flatten();
        let Some((i, job)) = next else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(job));
        if let Ok(mut all) = outcomes.lock() {
            all[i] = Some(outcome);
        }
        true
    };
    let helpers = threads.clamp(1, n.max(1)) - 1;
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|| while run_next() {});
        }
        while run_next() {
            between();
        }
    });
    outcomes
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(Box::new("a job was not run"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn outcomes_come_in_job_order_and_the_caller_works_too() {
        let here = std::thread::current().id();
        let jobs: Vec<_> = (0..64)
            .map(|i| {
                move || {
                    // Long enough that the helper usually takes some jobs too; which ones is not fixed.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    (i, std::thread::current().id())
                }
            })
            .collect();
        let outcomes: Vec<_> = share(jobs, 2).into_iter().map(|r| r.ok()).collect();
        let got: Vec<usize> = outcomes.iter().flatten().map(|(i, _)| *i).collect();
        assert_eq!(got, (0..64).collect::<Vec<_>>());
        let threads: HashSet<_> = outcomes.iter().flatten().map(|(_, t)| *t).collect();
        assert!(threads.contains(&here));
        assert!(threads.len() <= 2);
    }

    #[test]
    fn between_runs_on_the_caller_after_each_of_its_jobs() {
        let here = std::thread::current().id();
        let mut calls = 0;
        let jobs: Vec<_> = (0..8).map(|i| move || i * 2).collect();
        let outcomes = share_between(jobs, 1, || {
            assert_eq!(std::thread::current().id(), here);
            calls += 1;
        });
        assert_eq!(calls, 8);
        let doubled: Vec<_> = outcomes.into_iter().map(|r| r.ok()).collect();
        assert_eq!(doubled, (0..8).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_others_finish() {
        let outcomes = share(
            vec![
                Box::new(|| -> u8 { panic!("first") }) as Box<dyn FnOnce() -> u8 + Send>,
                Box::new(|| 2),
                Box::new(|| 3),
            ],
            2,
        );
        assert!(outcomes[0].is_err());
        assert_eq!(outcomes[1].as_ref().ok(), Some(&2));
        assert_eq!(outcomes[2].as_ref().ok(), Some(&3));
        assert!(share(Vec::<fn() -> u8>::new(), 2).is_empty());
        let one: Vec<_> = share(vec![|| 7u8], 4).into_iter().map(|r| r.ok()).collect();
        assert_eq!(one, [Some(7)]);
    }
}
