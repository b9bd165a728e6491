//! Integration tests on a real Redis (127.0.0.1:6379, each test under its own key prefix; the
//! restart test starts a Redis of its own).

mod basic;
mod cancel;
mod common;
mod cron;
mod delayed;
mod kill;
mod lease;
mod restart;
mod retries;
mod shutdown;
