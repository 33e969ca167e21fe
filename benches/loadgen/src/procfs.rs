//! What the benchmark reads from `/proc` about a process (CPU time, memory) and the fd limit.

/// CPU time and memory of one or more processes (a server may be an nginx master and worker).
#[derive(Debug, Clone)]
pub struct Processes {
    pids: Vec<u32>,
}

impl Processes {
    /// The processes to watch; `0` means this process.
    pub fn new(pids: Vec<u32>) -> Self {
        Processes { pids }
    }

    /// Whether any process is being watched.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    /// User plus system CPU seconds, summed.
    pub fn cpu_seconds(&self) -> f64 {
        self.pids.iter().filter_map(|pid| cpu_seconds(*pid)).sum()
    }

    /// Resident set size in KiB, summed.
    pub fn rss_kib(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|pid| status_kib(*pid, "VmRSS:"))
            .sum()
    }

    /// Peak resident set size in KiB, summed (each process's `VmHWM`).
    pub fn hwm_kib(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|pid| status_kib(*pid, "VmHWM:"))
            .sum()
    }
}

fn proc_dir(pid: u32) -> String {
    if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    }
}

/// utime + stime from `/proc/PID/stat`, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    if pid == 0 {
        return Some(own_cpu_seconds());
    }
    let stat = std::fs::read_to_string(format!("{}/stat", proc_dir(pid))).ok()?;
    // The command name may hold spaces and parentheses; the fields start after the last `)`.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// This process's user plus system time, to the microsecond.
fn own_cpu_seconds() -> f64 {
    // SAFETY: `usage` is a valid, writable rusage for the duration of the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{}/status", proc_dir(pid))).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Pages of memory all TCP sockets of the machine hold (`/proc/net/sockstat`, `TCP: ... mem`).
pub fn tcp_mem_pages() -> u64 {
    let Ok(sockstat) = std::fs::read_to_string("/proc/net/sockstat") else {
        return 0;
    };
    sockstat
        .lines()
        .find(|line| line.starts_with("TCP:"))
        .and_then(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| *word == "mem")?;
            words.next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// The kernel's TCP memory thresholds in pages: (pressure, max) from `tcp_mem`.
pub fn tcp_mem_limits() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap_or_default();
    let values: Vec<u64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    match values[..] {
        [_, pressure, max] => (pressure, max),
        _ => (0, 0),
    }
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls get a valid pointer to an rlimit that lives across the call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit = wanted;
            }
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = Processes::new(vec![0]);
        let spin: u64 = (0..2_000_000u64).map(|n| n % 7).sum();
        assert!(spin > 0);
        assert!(me.cpu_seconds() >= 0.0);
        assert!(me.rss_kib() > 0);
        assert!(me.hwm_kib() >= me.rss_kib() / 2);
        let (pressure, max) = tcp_mem_limits();
        assert!(pressure <= max);
    }
}
