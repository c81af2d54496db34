//! The export destination is down for a whole run: the run completes and
//! stores everything, and the next start delivers the backlog once.

use std::net::SocketAddr;

use ferry_testkit::{Behavior, Receiver};

use crate::app::{App, count};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_is_down_never_fails_the_run_and_later_gets_every_export_once() {
    // Nothing listens here yet: every connection is refused.
    let addr = SocketAddr::from(([127, 0, 0, 1], ferry_testkit::free_port()));
    let url = format!("http://{addr}/hook");
    let target = ["--export-to", url.as_str(), "--allow-private-networks"];
    let app = App::new();

    let summary = app
        .run(&[&["--evaluations", "1000"], &target[..]].concat())
        .await;
    assert_eq!(count(&summary, "evaluations"), 1000, "{summary:#}");
    assert_eq!(count(&summary, "stored_evaluations"), 1000);
    assert_eq!(count(&summary, "exports_sent"), 1000);
    assert_eq!(count(&summary, "export_errors"), 0);
    assert_eq!(count(&summary, "exports.delivered"), 0);
    assert_eq!(
        count(&summary, "exports.pending") + count(&summary, "exports.retrying"),
        1000,
        "{summary:#}"
    );
    assert_eq!(summary["settled"], false);
    let (stored, recorded) = app.recorded().await;
    assert_eq!((stored, recorded.len()), (1000, 1000));

    // The destination comes back on its address; the service starts again
    // only to deliver what waits.
    let receiver = Receiver::start_at(addr).await;
    receiver.set_behavior(Behavior::Ok);
    let summary = app
        .run(&[&["--evaluations", "0", "--wait", "60"], &target[..]].concat())
        .await;
    assert_eq!(summary["settled"], true, "{summary:#}");
    assert_eq!(count(&summary, "exports.delivered"), 1000);
    assert_eq!(count(&summary, "exports_sent"), 0, "nothing was sent twice");

    assert_eq!(receiver.distinct_ids(), recorded);
    assert_eq!(receiver.count(), 1000, "an export arrived more than once");
    let event = receiver.requests()[0].json();
    assert_eq!(event["type"], "evaluation.completed");
    assert_eq!(event["data"]["dataset"], "churn_predictions");
    assert!(event["data"]["f1"].as_f64().is_some(), "{event:#}");
    assert_eq!(app.recorded().await.1, recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_answers_after_5_s_never_holds_an_evaluation_up() {
    let receiver = Receiver::start().await;
    receiver.set_behavior(Behavior::Delay(std::time::Duration::from_secs(5)));
    let app = App::new();
    let summary = app
        .run(&[
            "--evaluations",
            "500",
            "--export-to",
            &receiver.url(),
            "--allow-private-networks",
        ])
        .await;
    assert_eq!(count(&summary, "evaluations"), 500, "{summary:#}");
    assert_eq!(count(&summary, "exports_sent"), 500);
    // Two chunks of sends: had either waited for the receiver, the run
    // would have taken 5 s or more.
    let seconds = summary["seconds"].as_f64().unwrap();
    assert!(seconds < 5.0, "the run took {seconds} s: {summary:#}");
    assert!(receiver.count() > 0, "nothing was delivered during the run");
}
