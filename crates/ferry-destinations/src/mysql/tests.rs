//! Pure tests of the mysql kind: what differs from postgres (the shared
//! SQL config is tested there), and the insert statement.

use ferry_core::destination::Auth;
use serde_json::json;

use super::MysqlConfig;
use crate::kind_config::KindConfig;
use crate::net_guard::NetworkPolicy;

#[test]
fn urls_are_mysql_ones_with_their_own_tls_parameter() {
    let policy = NetworkPolicy::allow_all();
    for url in [
        "mysql://db/app",
        "mariadb://db/app",
        "mysql://root@db:3306/app?ssl-mode=REQUIRED",
    ] {
        assert!(
            MysqlConfig::validate(&json!({"url": url, "table": "t"}), &Auth::None, &policy).is_ok(),
            "{url}"
        );
    }
    for url in [
        "postgres://db/app",
        "mysql://db/app?sslmode=require",
        "mysql://u:pw@db/app",
    ] {
        let errors =
            MysqlConfig::validate(&json!({"url": url, "table": "t"}), &Auth::None, &policy)
                .unwrap_err();
        assert_eq!(errors[0].field, "config.url", "{url}");
    }
    let tls = json!({"url": "mysql://db/app?ssl-mode=verify_identity", "table": "t", "tls": {}});
    assert!(MysqlConfig::validate(&tls, &Auth::None, &policy).is_ok());
}

#[test]
fn names_are_backquoted() {
    let super::MysqlConfig(config) = super::MysqlConfig::from_stored(
        &json!({"url": "mysql://db/app", "table": "events", "columns": {"timestamp": "at"}}),
        &Auth::None,
        &NetworkPolicy::allow_all(),
    )
    .unwrap();
    assert_eq!(
        super::deliverer::insert_statement(&config),
        "INSERT INTO `events` (`id`, `type`, `at`, `data`) VALUES (?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE `id` = `id`"
    );
}
