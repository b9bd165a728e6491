//! A worker process for the tests that kill workers. Usage:
//! `flow-queue-test-worker <redis url> <prefix> <lease ms> <hang|exit>`.
//! It prints `started <job id> <attempt> <token>` when a handler starts; then `hang` waits
//! forever (renewing its lease) until the test kills it, and `exit` ends the process at once
//! without writing anything, like a job that crashes its worker.

use std::time::Duration;

use flow_queue::{JobOutcome, Queue, QueueConfig, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, lease_ms, mode] = args.as_slice() else {
        return Err("usage: flow-queue-test-worker <redis url> <prefix> <lease ms> <hang|exit>".into());
    };
    let exit = match mode.as_str() {
        "hang" => false,
        "exit" => true,
        other => return Err(format!("unknown mode {other}").into()),
    };
    let config = QueueConfig {
        prefix: prefix.clone(),
        lease: Duration::from_millis(lease_ms.parse()?),
        ..QueueConfig::default()
    };
    let queue = Queue::connect(url, config).await?;
    let worker = Worker::new(
        queue,
        WorkerConfig {
            id: format!("child-{}", std::process::id()),
            concurrency: 1,
            block: Duration::from_millis(100),
            reclaim_interval: Some(Duration::from_millis(100)),
            ..WorkerConfig::default()
        },
    )?;
    let handler = move |job: flow_queue::JobContext| async move {
        println!("started {} {} {}", job.id(), job.attempt(), job.delivery().token);
        if exit {
            std::process::exit(137);
        }
        std::future::pending::<JobOutcome>().await
    };
    worker.run(handler, CancellationToken::new()).await?;
    Ok(())
}
