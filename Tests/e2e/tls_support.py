"""Throw-away X.509 material for end-to-end TLS tests (PostgreSQL, Redis, ...), made with the
`openssl` command-line tool (no Python package needed).

Typical use:

    from tls_support import create_tls_material
    tls = create_tls_material(tmp_dir, dns_names=["localhost"], ips=["127.0.0.1"], client_common_name="chat")
    tls.ca.cert            # PEM of the CA that signed tls.server and tls.client (sslrootcert, tls-ca-cert-file)
    tls.server.cert/.key   # server certificate (serverAuth, SubjectAltName DNS/IP) and its key (mode 0600)
    tls.client.cert/.key   # client certificate (clientAuth, CN = client_common_name) and its key (mode 0600)
    tls.other_ca.cert      # a second, unrelated CA: verification against it must fail

    # A server that runs as another user (e.g. `postgres` when the tests run as root) needs its own
    # copies it can read, with the key private to it:
    copy = tls.server.install(server_dir, owner="postgres")

Or piece by piece: create_ca(dir, name), ca.issue_server(dir, name, dns_names, ips),
ca.issue_client(dir, name, common_name). Keys are EC P-256 by default (instant to generate);
key_type="rsa" gives RSA 2048 keys. Everything is valid from now for `days` days (default 30).

Errors (no `openssl`, a failing command) raise TLSSetupError with the command's output: callers
should fail the test, never skip it.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, replace
from typing import Iterable

DEFAULT_DAYS = 30
OPENSSL_TIMEOUT = 60  # seconds for one openssl command
# Names that go into a config file unquoted: keep them simple.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
_SAFE_DNS = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TLSSetupError(Exception):
    """Certificates could not be made (openssl missing or failing)."""


def openssl_binary() -> str:
    """Path of the openssl CLI; TLSSetupError when it is not installed."""
    found = shutil.which("openssl")
    if not found:
        raise TLSSetupError("the `openssl` command is not installed (apt-get install openssl): "
                            "the TLS tests need it to make their certificates")
    return found


def _run(args: list[str], what: str) -> str:
    try:
        proc = subprocess.run([openssl_binary(), *args], capture_output=True, text=True,
                              timeout=OPENSSL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise TLSSetupError(f"openssl ({what}) did not finish within {OPENSSL_TIMEOUT}s") from error
    if proc.returncode != 0:
        raise TLSSetupError(f"openssl {' '.join(args)} ({what}) failed with {proc.returncode}:\n"
                            f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _check_name(value: str, what: str) -> str:
    if not _SAFE_NAME.match(value):
        raise ValueError(f"{what} {value!r}: use 1-64 of [A-Za-z0-9 ._@-]")
    return value


def _check_file(value: str) -> str:
    if not _SAFE_FILE.match(value):
        raise ValueError(f"file stem {value!r}: use 1-64 of [A-Za-z0-9._-]")
    return value


def _key_options(key_type: str) -> list[str]:
    if key_type == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    if key_type == "rsa":
        return ["-newkey", "rsa:2048"]
    raise ValueError(f"key_type {key_type!r}: 'ec' or 'rsa'")


def _private(path: pathlib.Path) -> None:
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class Certificate:
    """A leaf certificate (PEM) with its private key (PEM, unencrypted, mode 0600) and the
    certificate of the CA that signed it."""

    name: str
    cert: pathlib.Path
    key: pathlib.Path
    ca_cert: pathlib.Path
    common_name: str

    def subject(self) -> str:
        """The subject as openssl prints it in RFC 2253 form, e.g. `CN=chat,O=chat e2e`."""
        out = _run(["x509", "-in", str(self.cert), "-noout", "-subject", "-nameopt", "RFC2253"], "subject")
        return out.strip().removeprefix("subject=").strip()

    def text(self) -> str:
        """`openssl x509 -text` of the certificate (for error messages)."""
        return _run(["x509", "-in", str(self.cert), "-noout", "-text"], "print")

    def install(self, directory: pathlib.Path | str, owner: str | None = None, group: str | None = None,
                cert_mode: int = 0o644, key_mode: int = 0o600) -> "Certificate":
        """Copies cert, key and CA cert into `directory` (created if needed) as <name>.crt,
        <name>.key and <name>-ca.crt, owned by `owner` (a user name; needs root) so that a server
        running as that user can read them (PostgreSQL refuses a key readable by others).
        Returns the copy."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        targets = {
            "cert": (self.cert, directory / f"{self.name}.crt", cert_mode),
            "key": (self.key, directory / f"{self.name}.key", key_mode),
            "ca_cert": (self.ca_cert, directory / f"{self.name}-ca.crt", cert_mode),
        }
        for source, target, mode in targets.values():
            install_file(source, target, owner=owner, group=group, mode=mode)
        return replace(self, **{field: target for field, (_s, target, _m) in targets.items()})


def install_file(source: pathlib.Path | str, target: pathlib.Path | str, owner: str | None = None,
                 group: str | None = None, mode: int = 0o644) -> pathlib.Path:
    """Copies one file with the given mode and (when owner/group are set) ownership."""
    target = pathlib.Path(target)
    shutil.copyfile(source, target)
    os.chmod(target, mode)
    if owner is not None or group is not None:
        shutil.chown(target, user=owner, group=group if group is not None else owner)
    return target


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA (basicConstraints CA:TRUE, pathlen 0) that issues leaf certificates."""

    name: str
    cert: pathlib.Path
    key: pathlib.Path
    key_type: str = "ec"
    days: int = DEFAULT_DAYS

    def _issue(self, directory: pathlib.Path | str, file_stem: str, common_name: str, usage: str,
               dns_names: Iterable[str], ips: Iterable[str]) -> Certificate:
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _check_file(file_stem)
        _check_name(common_name, "common name")
        alt = []
        for name in dns_names:
            if not _SAFE_DNS.match(name):
                raise ValueError(f"DNS name {name!r}: letters, digits, '.', '-' (and a leading '*.')")
            alt.append(f"DNS:{name}")
        for ip in ips:
            alt.append(f"IP:{ipaddress.ip_address(ip)}")
        cert, key = directory / f"{file_stem}.pem", directory / f"{file_stem}.key"
        csr, config = directory / f"{file_stem}.csr", directory / f"{file_stem}.cnf"
        lines = [
            "[req]", "distinguished_name = req_dn", "prompt = no", "",
            "[req_dn]", "O = chat e2e", f"CN = {common_name}", "",
            "[leaf]",
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature, keyEncipherment",
            f"extendedKeyUsage = {usage}",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid, issuer",
        ]
        if alt:
            lines.append(f"subjectAltName = {', '.join(alt)}")
        config.write_text("\n".join(lines) + "\n")
        _run(["req", "-new", *_key_options(self.key_type), "-nodes", "-keyout", str(key), "-out", str(csr),
              "-config", str(config)], f"key and request for {file_stem}")
        _private(key)
        _run(["x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
              "-set_serial", str(secrets.randbits(63) | 1), "-days", str(self.days), "-sha256",
              "-extfile", str(config), "-extensions", "leaf", "-out", str(cert)], f"signing {file_stem}")
        csr.unlink()
        _run(["verify", "-CAfile", str(self.cert), "-purpose", "sslserver" if usage == "serverAuth" else "sslclient",
              str(cert)], f"verifying {file_stem}")
        return Certificate(file_stem, cert, key, self.cert, common_name)

    def issue_server(self, directory: pathlib.Path | str, file_stem: str = "server",
                     dns_names: Iterable[str] = ("localhost",), ips: Iterable[str] = ("127.0.0.1",),
                     common_name: str | None = None) -> Certificate:
        """A server certificate (extendedKeyUsage serverAuth) for these DNS names and IP addresses
        (SubjectAltName; CN is the first DNS name unless given)."""
        dns_names, ips = list(dns_names), list(ips)
        if not dns_names and not ips:
            raise ValueError("a server certificate needs at least one DNS name or IP address")
        cn = common_name or (dns_names[0] if dns_names else str(ips[0]))
        return self._issue(directory, file_stem, cn, "serverAuth", dns_names, ips)

    def issue_client(self, directory: pathlib.Path | str, file_stem: str = "client",
                     common_name: str = "client") -> Certificate:
        """A client certificate (extendedKeyUsage clientAuth) with this CN (PostgreSQL's `cert`
        authentication takes it as the user name)."""
        return self._issue(directory, file_stem, common_name, "clientAuth", [], [])


def create_ca(directory: pathlib.Path | str, name: str = "chat e2e test CA", file_stem: str = "ca",
              key_type: str = "ec", days: int = DEFAULT_DAYS) -> CertificateAuthority:
    """A new self-signed CA: <directory>/<file_stem>.pem and .key (0600)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _check_file(file_stem)
    _check_name(name, "CA name")
    cert, key, config = directory / f"{file_stem}.pem", directory / f"{file_stem}.key", directory / f"{file_stem}.cnf"
    config.write_text("\n".join([
        "[req]", "distinguished_name = req_dn", "x509_extensions = ca", "prompt = no", "",
        "[req_dn]", "O = chat e2e", f"CN = {name}", "",
        "[ca]",
        "basicConstraints = critical, CA:TRUE, pathlen:0",
        "keyUsage = critical, keyCertSign, cRLSign",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid:always",
    ]) + "\n")
    _run(["req", "-x509", "-new", *_key_options(key_type), "-nodes", "-keyout", str(key), "-out", str(cert),
          "-days", str(days), "-sha256", "-set_serial", str(secrets.randbits(63) | 1), "-config", str(config)],
         f"CA {name}")
    _private(key)
    return CertificateAuthority(name, cert, key, key_type, days)


@dataclass(frozen=True)
class TLSMaterial:
    """Everything a TLS test usually needs, in one directory."""

    directory: pathlib.Path
    ca: CertificateAuthority  # signed server and client
    other_ca: CertificateAuthority  # unrelated: verification against it must fail
    server: Certificate
    client: Certificate


def create_tls_material(directory: pathlib.Path | str, dns_names: Iterable[str] = ("localhost",),
                        ips: Iterable[str] = ("127.0.0.1",), client_common_name: str = "client",
                        key_type: str = "ec", days: int = DEFAULT_DAYS) -> TLSMaterial:
    """A CA, a server certificate for dns_names / ips and a client certificate (CN
    client_common_name) signed by it, and a second CA that signed nothing; files in `directory`:
    ca.pem/.key, other-ca.pem/.key, server.pem/.key, client.pem/.key (keys mode 0600)."""
    directory = pathlib.Path(directory)
    ca = create_ca(directory, "chat e2e test CA", "ca", key_type, days)
    other = create_ca(directory, "chat e2e other CA", "other-ca", key_type, days)
    server = ca.issue_server(directory, "server", dns_names, ips)
    client = ca.issue_client(directory, "client", client_common_name)
    return TLSMaterial(directory, ca, other, server, client)
