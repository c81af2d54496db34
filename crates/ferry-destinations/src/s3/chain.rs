//! The standard AWS provider chain of S3 destinations without `auth`, in
//! the AWS SDKs' order: the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then the profile of the
//! shared files, then web identity, container and instance credentials
//! (those last three are `object_store`'s).
//!
//! The profile is `AWS_PROFILE` (default `default`), read from
//! `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`, sections
//! `[name]`) and `AWS_CONFIG_FILE` (default `~/.aws/config`, sections
//! `[profile name]` and `[default]`); the credentials file wins where both
//! set a property. It gives static keys (`aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`) and the region when the
//! config has none (after `AWS_REGION` and `AWS_DEFAULT_REGION`). A
//! malformed file, a profile named by `AWS_PROFILE` that neither file has,
//! half a key pair, or a profile that gets its credentials another way
//! (`role_arn`, `credential_process`, SSO …) is an error rather than a
//! silent fall through to the instance metadata service. A default profile
//! without keys (only a region, say) falls through.
//!
//! The environment comes in as an [`AwsEnvironment`], so that it can be
//! given rather than read from the process.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_core::secret::Secret;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use super::config::DEFAULT_REGION;
use super::ini::{self, Section};

/// Profile properties that get credentials in ways Ferry does not follow.
const UNSUPPORTED_SOURCES: &[&str] = &[
    "role_arn",
    "credential_process",
    "credential_source",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
];

/// The environment variables the chain reads (`AWS_*` and `HOME`).
#[derive(Clone, Default)]
pub struct AwsEnvironment {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for AwsEnvironment {
    /// Names only: the values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl AwsEnvironment {
    /// The process's `AWS_*` variables and `HOME`.
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars().filter(|(name, _)| relevant(name)))
    }

    /// The given variables (those that are not `AWS_*` or `HOME` are left
    /// out).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = vars
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .filter(|(name, _)| relevant(name))
            .collect();
        Self { vars }
    }

    /// A variable, unless unset or empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A file of the chain: `variable`'s path (a leading `~/` is the home
    /// directory), else `default` under the home directory.
    fn file(&self, variable: &str, default: &str) -> Option<PathBuf> {
        let home = self.get("HOME").map(PathBuf::from);
        match self.get(variable) {
            Some(path) => match path.strip_prefix("~/") {
                Some(rest) => home.map(|home| home.join(rest)),
                None => Some(PathBuf::from(path)),
            },
            None => home.map(|home| home.join(default)),
        }
    }
}

fn relevant(name: &str) -> bool {
    name.starts_with("AWS_") || name == "HOME"
}

/// Static keys from a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileKeys {
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    pub session_token: Option<Secret<String>>,
}

/// Where the chain found credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// The profile's static keys.
    Profile(ProfileKeys),
    /// Neither: web identity, container or instance credentials.
    Remaining,
}

/// What the chain resolved for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub credentials: Credentials,
    pub region: String,
}

/// Resolves the chain for a destination whose config gives `region` (or
/// not). Reads the shared files only when the environment lacks
/// credentials or a region.
pub fn resolve(env: &AwsEnvironment, region: Option<&str>) -> Result<Resolved, String> {
    let from_environment =
        env.get("AWS_ACCESS_KEY_ID").is_some() || env.get("AWS_SECRET_ACCESS_KEY").is_some();
    let region = region
        .or_else(|| env.get("AWS_REGION"))
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .map(str::to_owned);
    if let (true, Some(region)) = (from_environment, &region) {
        return Ok(Resolved {
            credentials: Credentials::Environment,
            region: region.clone(),
        });
    }
    let profile = load_profile(env)?;
    let credentials = match (&profile, from_environment) {
        (_, true) => Credentials::Environment,
        (Some((name, section)), false) => profile_keys(name, section)?,
        (None, false) => Credentials::Remaining,
    };
    let profile_region = match &profile {
        Some((name, section)) => profile_region(name, section)?,
        None => None,
    };
    Ok(Resolved {
        credentials,
        region: region
            .or(profile_region)
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
    })
}

/// An `object_store` builder for the chain: the environment's `AWS_*`
/// settings, the profile's keys when the chain found them there, and the
/// region.
pub fn builder(env: &AwsEnvironment, region: Option<&str>) -> Result<AmazonS3Builder, String> {
    let resolved = resolve(env, region)?;
    let mut builder = AmazonS3Builder::new();
    for (name, value) in &env.vars {
        let Some(key) = name
            .starts_with("AWS_")
            .then(|| name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok())
            .flatten()
        else {
            continue;
        };
        let is_credential = matches!(
            key,
            AmazonS3ConfigKey::AccessKeyId
                | AmazonS3ConfigKey::SecretAccessKey
                | AmazonS3ConfigKey::Token
        );
        // Profile keys are never mixed with an environment session token.
        if !(is_credential && matches!(resolved.credentials, Credentials::Profile(_))) {
            builder = builder.with_config(key, value);
        }
    }
    if let Credentials::Profile(keys) = resolved.credentials {
        builder = builder
            .with_access_key_id(keys.access_key_id)
            .with_secret_access_key(keys.secret_access_key.expose());
        if let Some(token) = keys.session_token {
            builder = builder.with_token(token.expose());
        }
    }
    Ok(builder.with_region(resolved.region))
}

/// The chosen profile's properties, merged from both files; `None` when
/// the default profile is in neither.
fn load_profile(env: &AwsEnvironment) -> Result<Option<(String, Section)>, String> {
    let named = env.get("AWS_PROFILE");
    let name = named.unwrap_or("default");
    let credentials_file = env.file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config_file = env.file("AWS_CONFIG_FILE", ".aws/config");
    let mut merged: Option<Section> = None;
    // The config file first: the credentials file wins.
    for (path, is_config) in [(&config_file, true), (&credentials_file, false)] {
        let Some(path) = path else { continue };
        let sections = match std::fs::read_to_string(path) {
            Ok(text) => ini::parse(&text)
                .map_err(|e| format!("the AWS shared file {} is malformed: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "cannot read the AWS shared file {}: {e}",
                    path.display()
                ));
            }
        };
        for (section, properties) in sections {
            if section_profile(&section, is_config) == Some(name) {
                merged.get_or_insert_default().extend(properties);
            }
        }
    }
    match (merged, named) {
        (Some(section), _) => Ok(Some((name.to_owned(), section))),
        (None, None) => Ok(None),
        (None, Some(_)) => {
            let shown = |path: &Option<PathBuf>| match path {
                Some(path) => path.display().to_string(),
                None => "(no home directory)".to_owned(),
            };
            Err(format!(
                "AWS_PROFILE names the profile `{name}`, which neither {} nor {} has",
                shown(&credentials_file),
                shown(&config_file)
            ))
        }
    }
}

/// The profile a section is: `[name]` in the credentials file; `[profile
/// name]` or `[default]` in the config file (whose other sections, such as
/// `[sso-session …]`, are no profiles).
fn section_profile(section: &str, is_config: bool) -> Option<&str> {
    if !is_config {
        return Some(section);
    }
    match section.strip_prefix("profile ") {
        Some(name) => Some(name.trim()),
        None => (section == "default").then_some(section),
    }
}

fn profile_keys(name: &str, section: &Section) -> Result<Credentials, String> {
    let get = |key: &str| section.get(key).filter(|v| !v.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Credentials::Profile(ProfileKeys {
            access_key_id: id.clone(),
            secret_access_key: Secret::new(secret.clone()),
            session_token: get("aws_session_token").map(|t| Secret::new(t.clone())),
        })),
        (Some(_), None) => Err(format!(
            "the AWS profile `{name}` has aws_access_key_id but no aws_secret_access_key"
        )),
        (None, Some(_)) => Err(format!(
            "the AWS profile `{name}` has aws_secret_access_key but no aws_access_key_id"
        )),
        (None, None) => match UNSUPPORTED_SOURCES.iter().find(|k| get(k).is_some()) {
            Some(source) => Err(format!(
                "the AWS profile `{name}` gets its credentials through `{source}`, which Ferry does not support: give the profile aws_access_key_id and aws_secret_access_key, or the destination an access_key auth"
            )),
            None => Ok(Credentials::Remaining),
        },
    }
}

fn profile_region(name: &str, section: &Section) -> Result<Option<String>, String> {
    match section.get("region").filter(|r| !r.is_empty()) {
        Some(region)
            if !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Err(format!(
                "the AWS profile `{name}` has a region that is not a region name such as eu-west-1"
            ))
        }
        region => Ok(region.cloned()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const CREDENTIALS: &str = "[default]\n\
        aws_access_key_id = AKIADEFAULT\n\
        aws_secret_access_key = default-secret\n\
        [ci]\n\
        aws_access_key_id = AKIACI\n\
        aws_secret_access_key = ci-secret\n\
        aws_session_token = ci-token\n";
    const CONFIG: &str = "[default]\nregion = eu-central-1\n\
        [profile ci]\nregion = eu-west-1\n\
        [ci]\nregion = ap-south-1\n";

    /// A home directory with `.aws/credentials` and `.aws/config`.
    fn home(credentials: &str, config: &str) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), credentials).unwrap();
        std::fs::write(home.path().join(".aws/config"), config).unwrap();
        home
    }

    fn env(home: &Path, vars: &[(&str, &str)]) -> AwsEnvironment {
        let home = ("HOME", home.to_str().unwrap());
        AwsEnvironment::from_vars(vars.iter().copied().chain([home]))
    }

    fn keys(resolved: &Resolved) -> (&str, &str, Option<&str>) {
        match &resolved.credentials {
            Credentials::Profile(keys) => (
                keys.access_key_id.as_str(),
                keys.secret_access_key.expose().as_str(),
                keys.session_token.as_ref().map(|t| t.expose().as_str()),
            ),
            other => panic!("expected profile keys, got {other:?}"),
        }
    }

    #[test]
    fn the_chosen_profile_gives_its_keys_and_region() {
        let home = home(CREDENTIALS, CONFIG);
        let default = resolve(&env(home.path(), &[]), None).unwrap();
        assert_eq!(keys(&default), ("AKIADEFAULT", "default-secret", None));
        assert_eq!(default.region, "eu-central-1");
        let ci = resolve(&env(home.path(), &[("AWS_PROFILE", "ci")]), None).unwrap();
        assert_eq!(keys(&ci), ("AKIACI", "ci-secret", Some("ci-token")));
        // `[profile ci]` of the config file, not its bare `[ci]`.
        assert_eq!(ci.region, "eu-west-1");
        // The destination's region, then the environment's, beat the profile's.
        let ci = env(
            home.path(),
            &[("AWS_PROFILE", "ci"), ("AWS_REGION", "us-west-2")],
        );
        assert_eq!(resolve(&ci, None).unwrap().region, "us-west-2");
        assert_eq!(resolve(&ci, Some("sa-east-1")).unwrap().region, "sa-east-1");
    }

    #[test]
    fn the_credentials_file_wins_over_the_config_file() {
        let home = home(
            "[default]\naws_access_key_id = FROM-CREDENTIALS\n",
            "[default]\naws_access_key_id = FROM-CONFIG\naws_secret_access_key = s\n",
        );
        let resolved = resolve(&env(home.path(), &[]), None).unwrap();
        assert_eq!(keys(&resolved), ("FROM-CREDENTIALS", "s", None));
    }

    #[test]
    fn file_locations_come_from_the_environment() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("creds"), CREDENTIALS).unwrap();
        std::fs::write(home.path().join("conf"), CONFIG).unwrap();
        let config = home.path().join("conf");
        let vars = [
            ("AWS_SHARED_CREDENTIALS_FILE", "~/creds"),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "ci"),
        ];
        let resolved = resolve(&env(home.path(), &vars), None).unwrap();
        assert_eq!(keys(&resolved).0, "AKIACI");
        assert_eq!(resolved.region, "eu-west-1");
    }

    #[test]
    fn the_environment_comes_first_and_then_no_file_is_read() {
        let home = home("[default]\nnot an ini line\n", "");
        let vars = [
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ];
        let resolved = resolve(&env(home.path(), &vars), Some("eu-west-1")).unwrap();
        assert_eq!(resolved.credentials, Credentials::Environment);
        // Without a region the profile is read for one, and must parse.
        let error = resolve(&env(home.path(), &vars), None).unwrap_err();
        assert!(error.contains("is malformed: line 2"), "{error}");
    }

    #[test]
    fn nothing_configured_falls_through_to_the_remaining_providers() {
        let empty = tempfile::tempdir().unwrap();
        let resolved = resolve(&env(empty.path(), &[]), None).unwrap();
        assert_eq!(resolved.credentials, Credentials::Remaining);
        assert_eq!(resolved.region, DEFAULT_REGION);
        // A default profile with only a region (an instance's, say) too.
        let home = home("", "[default]\nregion = eu-north-1\n");
        let resolved = resolve(&env(home.path(), &[]), None).unwrap();
        assert_eq!(resolved.credentials, Credentials::Remaining);
        assert_eq!(resolved.region, "eu-north-1");
        assert_eq!(
            resolve(&AwsEnvironment::default(), None)
                .unwrap()
                .credentials,
            Credentials::Remaining
        );
    }

    #[test]
    fn what_cannot_be_used_is_a_clear_error_without_secrets() {
        let home = home(CREDENTIALS, CONFIG);
        let missing = resolve(&env(home.path(), &[("AWS_PROFILE", "prod")]), None).unwrap_err();
        assert!(
            missing.starts_with("AWS_PROFILE names the profile `prod`, which neither "),
            "{missing}"
        );
        assert!(missing.contains(".aws/credentials") && missing.contains(".aws/config"));
        for (credentials, expected) in [
            (
                "[default]\naws_access_key_id = AKIA\n",
                "has aws_access_key_id but no aws_secret_access_key",
            ),
            (
                "[default]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = a\n",
                "gets its credentials through `role_arn`, which Ferry does not support",
            ),
            (
                "[default]\naws_secret_access_key = top-secret\nregion eu\n",
                "is malformed: line 3: expected `[section]` or `name = value`",
            ),
            (
                "[default]\nregion = eu west\n",
                "has a region that is not a region name",
            ),
        ] {
            let home = tempfile::tempdir().unwrap();
            let vars = [("AWS_SHARED_CREDENTIALS_FILE", "~/credentials")];
            std::fs::write(home.path().join("credentials"), credentials).unwrap();
            let error = resolve(&env(home.path(), &vars), None).unwrap_err();
            assert!(error.contains(expected), "{credentials:?}: {error}");
            assert!(!error.contains("top-secret"), "{error}");
        }
    }

    #[test]
    fn the_builder_takes_the_profile_keys_and_no_environment_token() {
        let home = home(CREDENTIALS, CONFIG);
        let vars = [
            ("AWS_SESSION_TOKEN", "env-token"),
            ("AWS_ALLOW_HTTP", "true"),
        ];
        let builder = builder(&env(home.path(), &vars), None).unwrap();
        let value = |key| builder.get_config_value(&key);
        assert_eq!(
            value(AmazonS3ConfigKey::AccessKeyId).as_deref(),
            Some("AKIADEFAULT")
        );
        assert_eq!(value(AmazonS3ConfigKey::Token), None);
        assert_eq!(
            value(AmazonS3ConfigKey::Region).as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            value(AmazonS3ConfigKey::Client(
                object_store::ClientConfigKey::AllowHttp
            ))
            .as_deref(),
            Some("true")
        );
        assert_eq!(
            format!("{:?}", env(home.path(), &vars)),
            format!(r#"{{"AWS_ALLOW_HTTP", "AWS_SESSION_TOKEN", "HOME"}}"#)
        );
    }
}
