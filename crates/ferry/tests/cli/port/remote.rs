//! What only the remote Ferry does: keep taking events while its server is
//! down, and lose or repeat nothing when the server comes back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ferry::port::{DeliveryStatus, IntegrationPort};
use ferry::{Ferry, NewDestination};
use ferry_testkit::Receiver;

use super::{percentile, run_event, wait_for};
use crate::process::{ADMIN_KEY, FerryProcess, Output};

/// A `ferry serve` child that stops and starts again on the same data
/// directory and port, and the client spools beside it.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            port: ferry_testkit::free_port(),
        }
    }

    async fn start(&self) -> FerryProcess {
        let (data, log) = (self.path("data"), self.path("server.log"));
        FerryProcess::launch_at(&data, Output::File(&log), "info", &[], &[], self.port).await
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A remote Ferry on the spool `name`.
    async fn client(&self, name: &str) -> Ferry {
        Ferry::remote(&self.url(), ADMIN_KEY, self.path(name))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_server_down_for_half_the_run_loses_and_repeats_nothing() {
    let receiver = Receiver::start().await;
    let fixture = Server::new();
    let server = fixture.start().await;
    let ferry = fixture.client("spool").await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    let port_ = ferry.port(&dst.id).unwrap();
    let send = |i: usize| {
        let port = port_.clone();
        async move {
            let clock = Instant::now();
            let r = port.send(run_event(i)).await.unwrap();
            assert_eq!(r.status, DeliveryStatus::Pending);
            (clock.elapsed(), r.event_id)
        }
    };
    let mut ids = HashSet::new();
    let mut down = Vec::new();
    // The server stops: the first half of the run only reaches the spool.
    assert!(server.terminate().success());
    for i in 0..300 {
        let (took, id) = send(i).await;
        down.push(took);
        ids.insert(id.to_string());
    }
    let spooled = ids.iter().next().unwrap().parse().unwrap();
    let r = port_.status(&spooled).await.unwrap().unwrap();
    assert_eq!(r.status, DeliveryStatus::Pending);
    assert_eq!(r.attempts_remaining, None);
    let p99 = percentile(&mut down, 99);
    assert!(
        p99 < Duration::from_secs(1),
        "send p99 {p99:?} with the server down"
    );

    let _server = fixture.start().await;
    for i in 300..600 {
        ids.insert(send(i).await.1.to_string());
    }
    receiver
        .wait_for_distinct(600, Duration::from_secs(60))
        .await
        .unwrap();
    let got: HashSet<String> = receiver.distinct_ids().into_iter().collect();
    assert_eq!(got, ids, "lost or foreign events");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 600, "an event was delivered twice");
    let last = ids.iter().last().unwrap().parse().unwrap();
    assert_eq!(
        wait_for(&port_, &last, DeliveryStatus::Delivered)
            .await
            .attempts,
        1
    );
    ferry.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn the_spool_is_forwarded_by_the_next_client_on_it() {
    let receiver = Receiver::start().await;
    let fixture = Server::new();
    let server = fixture.start().await;
    let ferry = fixture.client("spool").await;
    let dst = ferry
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    assert!(server.terminate().success());
    let p = ferry.port(&dst.id).unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        let event = run_event(i).with_id(format!("e-{i}"));
        ids.push(p.send(event).await.unwrap().event_id);
    }
    // A second client cannot share the spool.
    let locked = Ferry::remote(&fixture.url(), ADMIN_KEY, fixture.path("spool"))
        .await
        .unwrap_err();
    assert!(locked.to_string().contains("another process"), "{locked}");
    ferry.shutdown(Duration::from_millis(100)).await.unwrap();

    let _server = fixture.start().await;
    let again = fixture.client("spool").await;
    let p = again.port(&dst.id).unwrap();
    for id in &ids {
        wait_for(&p, id, DeliveryStatus::Delivered).await;
    }
    assert_eq!(receiver.distinct_count(), 100);
    again.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Where the child client of `kill_9_of_the_client_loses_nothing_it_accepted`
/// finds its server, key, spool and destination, and writes each id `send`
/// accepted.
const CHILD_ENV: &str = "FERRY_TEST_SPOOL_CHILD";

/// The client process of the kill test: sends until it is killed, writing
/// each accepted id (one line, flushed) only after `send` returned.
#[tokio::test]
#[ignore = "run as a child process by kill_9_of_the_client_loses_nothing_it_accepted"]
async fn spool_child_client() {
    use std::io::Write;
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (url, spool, dst, accepted) = (parts[0], parts[1], parts[2], parts[3]);
    let ferry = Ferry::remote(url, ADMIN_KEY, spool).await.unwrap();
    let port = ferry.port(&dst.parse().unwrap()).unwrap();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(accepted)
        .unwrap();
    for i in 0.. {
        let event = run_event(i);
        let id = port.send(event).await.unwrap().event_id;
        writeln!(out, "{id}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn kill_9_of_the_client_loses_nothing_it_accepted() {
    let receiver = Receiver::start().await;
    let fixture = Server::new();
    let server = fixture.start().await;
    let admin = fixture.client("admin-spool").await;
    let dst = admin
        .destinations()
        .create(NewDestination::webhook(receiver.url()))
        .await
        .unwrap();
    // The server is down while the client sends: everything is in the spool.
    assert!(server.terminate().success());
    let accepted = fixture.path("accepted.txt");
    let spec = format!(
        "{}|{}|{}|{}",
        fixture.url(),
        fixture.path("spool").display(),
        dst.id,
        accepted.display()
    );
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "port::remote::spool_child_client",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = || {
        std::fs::read_to_string(&accepted)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<HashSet<String>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines().len() < 300 {
        assert!(
            Instant::now() < deadline,
            "the child client sent too little"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let sent = lines();

    let _server = fixture.start().await;
    let again = fixture.client("spool").await;
    // Events the child spooled but was killed before recording as
    // accepted arrive too: wait for every accepted one, not for a count.
    let deadline = Instant::now() + Duration::from_secs(60);
    let lost = loop {
        let got: HashSet<String> = receiver.distinct_ids().into_iter().collect();
        let lost: Vec<_> = sent.difference(&got).cloned().collect();
        if lost.is_empty() || Instant::now() > deadline {
            break lost;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        lost.is_empty(),
        "{} accepted events lost: {lost:?}",
        lost.len()
    );
    again.shutdown(Duration::from_secs(5)).await.unwrap();
    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}
