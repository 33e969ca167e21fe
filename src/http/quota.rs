//! Quotas: how much of the server one client, and all uploads together, may hold at once.
//!
//! Each is taken before the work it guards and given back when its guard is dropped, so a
//! request that ends in any way (finished, refused, cut off) returns what it took.
//!
//! Clients are told apart by address. An IPv6 client is counted by its /64 prefix, since
//! one host is usually given a whole /64 and could otherwise take a fresh address per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::Error;

/// Every quota the HTTP layer enforces.
#[derive(Debug)]
pub struct Quotas {
    /// Event streams per client.
    pub subscribers: Arc<PerClient>,
    /// Uploads in progress per client.
    pub uploads: Arc<PerClient>,
    /// Uploads in progress, all clients.
    pub uploads_total: Arc<Semaphore>,
    /// Bytes buffered by uploads in progress, all clients.
    pub upload_bytes: Arc<ByteBudget>,
}

impl Quotas {
    /// The quotas `config` sets.
    pub fn new(config: &Config) -> Quotas {
        Quotas {
            subscribers: Arc::new(PerClient::new(config.max_subscribers_per_ip)),
            uploads: Arc::new(PerClient::new(config.max_uploads_per_ip)),
            uploads_total: Arc::new(Semaphore::new(config.max_uploads)),
            upload_bytes: Arc::new(ByteBudget::new(config.max_upload_buffer_bytes)),
        }
    }
}

/// A count per client, each capped at the same maximum.
#[derive(Debug)]
pub struct PerClient {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    /// Counts up to `max` per client.
    pub fn new(max: usize) -> PerClient {
        PerClient {
            max,
            counts: Mutex::default(),
        }
    }

    /// Takes one for `client` if it is known, or refuses: `what` and `flag` name the quota.
    pub fn take_for(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        what: &'static str,
        flag: &'static str,
    ) -> Result<Option<ClientSlot>, Error> {
        let Some(client) = client else {
            return Ok(None);
        };
        match self.take(client) {
            Some(slot) => Ok(Some(slot)),
            None => Err(Error::ClientQuota {
                what,
                limit: self.max,
                flag,
            }),
        }
    }

    /// Takes one for `client`, or `None` if it already holds the maximum.
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let key = key(client);
        let mut counts = self.counts.lock().expect("never poisoned");
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            owner: self.clone(),
            key,
        })
    }

    /// How many `client` holds now.
    #[cfg(test)]
    fn held(&self, client: IpAddr) -> usize {
        let counts = self.counts.lock().expect("never poisoned");
        counts.get(&key(client)).copied().unwrap_or(0)
    }
}

/// One taken from a [`PerClient`] count; given back when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    owner: Arc<PerClient>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().expect("never poisoned");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What clients are counted by: the address, or an IPv6 address's /64 network.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// A number of bytes shared by many holders, none of whom may take it past the limit.
#[derive(Debug)]
pub struct ByteBudget {
    limit: usize,
    used: AtomicUsize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> ByteBudget {
        ByteBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now, by all reservations.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation against this budget.
    pub fn reserve(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// Bytes held from a [`ByteBudget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<ByteBudget>,
    held: usize,
}

impl Reservation {
    /// The budget's limit.
    pub fn limit(&self) -> usize {
        self.budget.limit
    }

    /// Holds exactly `bytes` from now on; `false` (holding what it held) if the budget cannot
    /// give that many.
    pub fn resize(&mut self, bytes: usize) -> bool {
        let used = &self.budget.used;
        if bytes <= self.held {
            used.fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
            return true;
        }
        let more = bytes - self.held;
        let taken = used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            let after = used.checked_add(more)?;
            (after <= self.budget.limit).then_some(after)
        });
        if taken.is_ok() {
            self.held = bytes;
        }
        taken.is_ok()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_up_to_its_cap_and_each_slot_comes_back() {
        let per_client = Arc::new(PerClient::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = per_client.take(a).unwrap();
        let _second = per_client.take(a).unwrap();
        assert!(per_client.take(a).is_none());
        assert!(
            per_client.take(b).is_some(),
            "another client is not affected"
        );
        drop(first);
        assert_eq!(per_client.held(a), 1);
        assert!(per_client.take(a).is_some());
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let per_client = Arc::new(PerClient::new(1));
        let _held = per_client.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            per_client
                .take("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_none()
        );
        assert!(
            per_client
                .take("2001:db8:1:3::1".parse().unwrap())
                .is_some()
        );
        let _v4 = per_client.take("192.0.2.1".parse().unwrap()).unwrap();
        assert!(
            per_client
                .take("::ffff:192.0.2.1".parse().unwrap())
                .is_none()
        );
    }

    #[test]
    fn a_zero_cap_admits_nobody_and_leaves_nothing_behind() {
        let per_client = Arc::new(PerClient::new(0));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(per_client.take(a).is_none());
        assert!(per_client.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = Arc::new(ByteBudget::new(100));
        let mut one = budget.reserve();
        let mut two = budget.reserve();
        assert!(one.resize(60));
        assert!(!two.resize(50), "60 + 50 is over 100");
        assert!(two.resize(40));
        assert!(one.resize(10), "shrinking always works");
        assert!(two.resize(90));
        drop((one, two));
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }
}
