//! What the destination or the port refuses: a 400 fails an export at once
//! without retries; a `send` that fails is recorded, never stops the run,
//! and the evaluation is exported on the next start.

use std::time::Duration;

use evaluation_export::evaluation::Dataset;
use evaluation_export::export::Exporter;
use evaluation_export::results::Results;
use ferry::{Ferry, NewDestination};
use ferry_testkit::{Behavior, Receiver};

use crate::app::{App, count};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_fails_each_export_once_without_retries() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Status(400));
    let app = App::new();
    let summary = app
        .run(&[
            "--evaluations",
            "20",
            "--wait",
            "30",
            "--export-to",
            &receiver.url(),
            "--allow-private-networks",
        ])
        .await;
    assert_eq!(summary["settled"], true, "{summary:#}");
    assert_eq!(count(&summary, "evaluations"), 20);
    assert_eq!(count(&summary, "exports.failed"), 20, "{summary:#}");
    assert_eq!(
        count(&summary, "exports.delivered") + count(&summary, "exports.dead"),
        0
    );
    assert_eq!(receiver.count(), 20, "a refused export was retried");
    assert_eq!(receiver.distinct_count(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_is_recorded_and_the_evaluation_is_exported_on_the_next_start() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let results = Results::open(&dir.path().join("results.db")).await.unwrap();
    let open = || async {
        Ferry::builder(dir.path().join("ferry"))
            .allow_private_networks(true)
            .open()
            .await
            .unwrap()
    };
    let ferry = open().await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    let port = ferry.port(&dst.id).unwrap();
    // A Ferry that was shut down refuses every send (`PortError::Closed`).
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();

    let dataset = Dataset::bundled().unwrap();
    let run = results
        .start_run(&dst.id, dataset.name(), 0, 100)
        .await
        .unwrap();
    let exporter = Exporter::new(&results, &port, &dst.id);
    let report = exporter.run(&dataset, &run, &mut |_| {}).await.unwrap();
    assert_eq!((report.evaluated, report.exports.accepted), (100, 0));
    assert_eq!(report.exports.refused, 100);
    assert!(report.exports.last_error.is_some());
    let counts = results.export_counts(&dst.id).await.unwrap();
    assert_eq!((counts.evaluations(), counts.not_exported), (100, 100));

    // The next start sends what waits.
    let ferry = open().await;
    let port = ferry.port(&dst.id).unwrap();
    let exporter = Exporter::new(&results, &port, &dst.id);
    let caught_up = exporter.catch_up().await.unwrap();
    assert_eq!((caught_up.accepted, caught_up.refused), (100, 0));
    let settled = exporter
        .settle(Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    assert!(settled.settled, "{settled:?}");
    assert_eq!(settled.counts.delivered, 100);
    assert_eq!(receiver.distinct_count(), 100);
    let first = receiver.requests()[0].json();
    let id = first["data"]["evaluation_id"].as_str().unwrap();
    assert!(id.starts_with(&format!("eval-{}-", run.id)), "{id}");
    assert!(results.unexported(&dst.id, None).await.unwrap().is_empty());
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
    results.close().await;
}
