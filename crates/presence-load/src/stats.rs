//! Figures from what the run saw: latency percentiles, and the server's CPU time and peak
//! memory read from `/proc` (the figures that stay comparable on a shared machine).

use std::path::Path;

/// Linux exports CPU times in /proc in USER_HZ units, which the kernel ABI fixes at 100
/// on every architecture we run on; reading it through libc would add a dependency for a
/// constant.
const TICKS_PER_SECOND: u64 = 100;

/// Nearest-rank percentile `p` (0 < p <= 100) of ascending `sorted`; None when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// utime + stime in ticks from the text of `/proc/PID/stat`. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted after its last `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` line such as `VmHWM:` from the text of `/proc/PID/status`, in kB.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut words = line[key.len()..].split_ascii_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// CPU seconds used so far by `pid` and every live descendant (Kamailio runs as a tree of
/// workers; Avail is one process). None when `pid` is gone.
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let mut ticks = 0;
    let mut pending = vec![pid];
    let mut first = true;
    while let Some(p) = pending.pop() {
        match std::fs::read_to_string(format!("/proc/{p}/stat")) {
            Ok(stat) => ticks += stat_cpu_ticks(&stat).unwrap_or(0),
            Err(_) if first => return None,
            // A worker that exited between the listing and the read.
            Err(_) => continue,
        }
        first = false;
        pending.extend(children(p));
    }
    Some(ticks as f64 / TICKS_PER_SECOND as f64)
}

/// The child processes of `pid` (empty when it has none or is gone).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_ascii_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A `kB` value of the main process's `/proc/PID/status` (only the main process: for a
/// multi-process server sharing memory the per-process values cannot simply be added).
pub fn process_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"));
    status_kb(&status.ok()?, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (avail (x) srv) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 3 4 20 0 \
                    9 0 1000 123456 789 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_cpu_ticks("12 (short) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn status_values_in_kb() {
        let status =
            "Name:\tavail-server\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(status_kb(status, "VmHWM:"), Some(51234));
        assert_eq!(status_kb(status, "VmRSS:"), Some(40000));
        assert_eq!(status_kb(status, "VmSwap:"), None);
        assert_eq!(status_kb("VmHWM:\t12 MB\n", "VmHWM:"), None);
    }

    #[test]
    fn our_own_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        assert!(tree_cpu_seconds(me).is_some());
        assert!(process_kb(me, "VmHWM:").is_some_and(|kb| kb > 0));
        assert_eq!(tree_cpu_seconds(u32::MAX), None);
    }
}
