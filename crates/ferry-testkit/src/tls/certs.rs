//! Throwaway TLS material for tests, made with the `openssl` command at
//! test time: a CA, a server certificate for `127.0.0.1` and `localhost`
//! signed by it, a client certificate (common name [`CLIENT_NAME`]) signed
//! by it, and a second CA that signed neither (a server certificate it is
//! given to trust is an untrusted one). Keys are P-256, in PKCS#8 PEM.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

/// The common name of the client certificate: the user name servers that
/// log clients in by certificate (PostgreSQL `cert`, RabbitMQ `EXTERNAL`)
/// see.
pub const CLIENT_NAME: &str = "ferry";

const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// The generated files, in a temporary directory removed on drop.
pub struct TestCertificates {
    dir: TempDir,
}

impl TestCertificates {
    /// Generates everything (a few tens of milliseconds).
    ///
    /// # Panics
    ///
    /// When `openssl` is missing or fails.
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let certificates = Self { dir };
        std::fs::write(certificates.path("openssl.cnf"), OPENSSL_CONFIG)
            .expect("write the openssl config");
        certificates.self_signed("ca", "Ferry test CA");
        certificates.self_signed("other-ca", "Ferry untrusted test CA");
        certificates.signed("server", "localhost", "server");
        certificates.signed("client", CLIENT_NAME, "client");
        certificates
    }

    /// A file of the set: `ca.pem`, `other-ca.pem`, `server.pem`,
    /// `server.key`, `client.pem`, `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA that signed the server and client certificates (PEM).
    pub fn ca(&self) -> String {
        self.read("ca.pem")
    }

    /// A CA that signed neither (PEM).
    pub fn other_ca(&self) -> String {
        self.read("other-ca.pem")
    }

    /// The client certificate (PEM).
    pub fn client_certificate(&self) -> String {
        self.read("client.pem")
    }

    /// The client certificate's private key (PKCS#8 PEM).
    pub fn client_key(&self) -> String {
        self.read("client.key")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_else(|e| panic!("read the generated {name}: {e}"))
    }

    fn self_signed(&self, name: &str, common_name: &str) {
        self.new_key(name);
        self.openssl(&[
            "req",
            "-new",
            "-x509",
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={common_name}"),
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn signed(&self, name: &str, common_name: &str, extensions: &str) {
        self.new_key(name);
        self.openssl(&[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={common_name}"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            extensions,
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn new_key(&self, name: &str) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("the openssl command is needed (Debian package openssl): {e}")
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
