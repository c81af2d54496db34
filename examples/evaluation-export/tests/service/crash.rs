//! `kill -9` in the middle of a run, then `--resume`: every export `send`
//! accepted arrives, and an evaluation exported again after the crash is
//! the same event, not a second one.

use std::time::Duration;

use ferry_testkit::Receiver;

use crate::app::{App, count};

const EVALUATIONS: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_every_accepted_export_arrives_and_the_run_resumes() {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let target = ["--export-to", url.as_str(), "--allow-private-networks"];
    let app = App::new();

    let planned = EVALUATIONS.to_string();
    let mut child = app.spawn(&[&["--evaluations", planned.as_str()], &target[..]].concat());
    receiver
        .wait_for_distinct(200, Duration::from_secs(60))
        .await
        .unwrap();
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    let (stored, accepted) = app.recorded().await;
    assert!(
        stored < EVALUATIONS,
        "the kill must land mid-run ({stored} evaluations stored)"
    );
    assert!(accepted.len() >= 200 || stored >= 200, "{stored} stored");

    let summary = app
        .run(
            &[
                &["--resume", "--evaluations", "0", "--wait", "60"],
                &target[..],
            ]
            .concat(),
        )
        .await;
    assert_eq!(summary["settled"], true, "{summary:#}");
    assert_eq!(count(&summary, "stored_evaluations"), EVALUATIONS as u64);
    assert_eq!(count(&summary, "exports.delivered"), EVALUATIONS as u64);

    let (stored, recorded) = app.recorded().await;
    assert_eq!((stored, recorded.len()), (EVALUATIONS, EVALUATIONS));
    assert!(
        accepted.is_subset(&recorded),
        "an event id changed after the crash"
    );
    // Everything accepted arrived (duplicates by webhook-id are allowed),
    // and nothing else: an evaluation exported before the kill but not yet
    // recorded was sent again under the same caller id, as the same event.
    assert_eq!(receiver.distinct_ids(), recorded);
}
