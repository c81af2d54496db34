//! The service as a client of a Ferry server: with the server down for the
//! whole run, every evaluation completes and its export waits in the spool;
//! once the server is back, every export arrives once.

use std::net::SocketAddr;
use std::time::Duration;

use ferry::{Ferry, NewDestination};
use ferry_testkit::Receiver;

use crate::app::{App, count};

const KEY: &str = "fk_example_remote_admin_key_0123456789abcdef";

/// A Ferry server on `addr` (the HTTP API of an embedded Ferry, in this
/// test's process).
async fn server(dir: &std::path::Path, addr: SocketAddr) -> Ferry {
    Ferry::builder(dir)
        .allow_private_networks(true)
        .serve_http(addr)
        .admin_key(KEY)
        .open()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_never_fails_the_run_and_later_gets_every_export_once() {
    let receiver = Receiver::start().await;
    let store = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], ferry_testkit::free_port()));
    let ferry = server(store.path(), addr).await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    ferry.shutdown(Duration::from_secs(1)).await.unwrap();

    let url = format!("http://{addr}");
    let dst = dst.id.to_string();
    let target = [
        "--ferry-url",
        url.as_str(),
        "--api-key",
        KEY,
        "--destination",
        dst.as_str(),
    ];
    let app = App::new();
    let summary = app
        .run(&[&["--evaluations", "500"], &target[..]].concat())
        .await;
    assert_eq!(count(&summary, "evaluations"), 500, "{summary:#}");
    assert_eq!(count(&summary, "exports_sent"), 500);
    assert_eq!(count(&summary, "export_errors"), 0);
    assert_eq!(count(&summary, "exports.pending"), 500, "{summary:#}");
    let (stored, recorded) = app.recorded().await;
    assert_eq!((stored, recorded.len()), (500, 500));

    let ferry = server(store.path(), addr).await;
    let summary = app
        .run(&[&["--evaluations", "0", "--wait", "60"], &target[..]].concat())
        .await;
    assert_eq!(summary["settled"], true, "{summary:#}");
    assert_eq!(count(&summary, "exports.delivered"), 500);
    assert_eq!(receiver.distinct_ids(), recorded);
    assert_eq!(receiver.count(), 500, "an export arrived more than once");
    ferry.shutdown(Duration::from_secs(1)).await.unwrap();
}
