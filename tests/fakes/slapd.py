"""A real OpenLDAP server (Debian's ``slapd``) for the LDAP connector's tests.

:func:`running_slapd` writes a ``slapd.conf`` into a temporary directory, starts ``slapd`` in
the foreground on two free loopback ports (``ldap://`` with StartTLS, and ``ldaps://``), waits
until it answers a rootDSE search (polled a bounded number of times, never a fixed sleep), and
stops it on exit. What it configures is what a small company's OpenLDAP has:

* an MDB database for ``dc=example,dc=com`` with the core, cosine, nis and inetOrgPerson schemas;
* the ``ppolicy`` overlay (its schema, with ``pwdAccountLockedTime``, is built into the module in
  OpenLDAP 2.5: slapo-ppolicy(5)), ``refint`` (a renamed user's DN follows into ``member`` and
  ``uniqueMember``), ``memberof`` and ``syncprov`` (which keeps ``contextCSN`` on the suffix);
* TLS with a CA and a server certificate for ``localhost`` / ``127.0.0.1`` made by :class:`TestCA`;
* a read-only service account ``cn=syncd,ou=services,dc=example,dc=com``, the way the README tells
  users to set one up, with slapd's default size limit (500) but no total limit on paged
  searches (slapd.conf(5) ``limits ... size.prtotal``);
* ``cn=capped,ou=services,...``: a second reader whose searches stop at 50 entries, for the
  size-limit error.

The server runs as whoever runs the tests (root in CI). Tests load data with :meth:`Slapd.add`,
which is one ``ldapadd`` of a whole LDIF (fast even for thousands of entries).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
READER_DN = f"cn=syncd,ou=services,{SUFFIX}"
READER_PASSWORD = "reader-secret"
CAPPED_DN = f"cn=capped,ou=services,{SUFFIX}"
CAPPED_LIMIT = 50
MODULE_PATH = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
READY_ATTEMPTS = 400  # rootDSE probes before giving up on a start (each waits ≤ 50 ms on slapd's exit)


# --- TLS -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCA:
    """A self-signed CA and a server certificate it issued, written as PEM files in ``root``."""

    __test__ = False  # not a pytest test class

    root: Path
    ca_file: Path
    cert_file: Path
    key_file: Path
    other_ca_file: Path  # a CA that did not sign the server's certificate

    @classmethod
    def create(cls, root: Path, names: Sequence[str] = ("localhost",), ips: Sequence[str] = ()) -> TestCA:
        """Make the CA, a server certificate for ``names`` and ``ips``, and an unrelated CA."""
        root.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = _self_signed("syncd test CA")
        server_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _, other_cert = _self_signed("some other CA")
        ca = cls(root, root / "ca.pem", root / "server.pem", root / "server.key", root / "other-ca.pem")
        ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        ca.other_ca_file.write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
        ca.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        ca.key_file.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ca.key_file.chmod(0o600)
        return ca


def _self_signed(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


# --- LDIF ----------------------------------------------------------------------------------------


def _safe(value: str) -> bool:
    """RFC 2849 SAFE-STRING: ASCII without NUL/CR/LF, not starting with space, colon or '<', not ending in space."""
    return (
        value.isascii()
        and not any(c in value for c in "\0\r\n")
        and not value.startswith((" ", ":", "<"))
        and not value.endswith(" ")
    )


def ldif_entry(dn: str, attributes: Mapping[str, str | bytes | Iterable[str | bytes]], changetype: str = "") -> str:
    """One LDIF record (RFC 2849); values that are not SAFE-STRINGs are written base64 (``::``)."""

    def line(name: str, value: str | bytes) -> str:
        if isinstance(value, str) and _safe(value):
            return f"{name}: {value}"
        raw = value.encode() if isinstance(value, str) else value
        return f"{name}:: {base64.b64encode(raw).decode()}"

    lines = [line("dn", dn)]
    if changetype:
        lines.append(f"changetype: {changetype}")
    for name, values in attributes.items():
        for value in [values] if isinstance(values, str | bytes) else values:
            lines.append(line(name, value))
    return "\n".join(lines) + "\n\n"


# --- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, ca: TestCA) -> str:
    # slapd.conf(5), slapo-ppolicy(5), slapo-refint(5), slapo-memberof(5), slapo-syncprov(5).
    return f"""
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/nis.schema
include {SCHEMA_DIR}/inetorgperson.schema
modulepath {MODULE_PATH}
moduleload back_mdb
moduleload ppolicy
moduleload refint
moduleload memberof
moduleload syncprov
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
TLSCACertificateFile {ca.ca_file}
TLSCertificateFile {ca.cert_file}
TLSCertificateKeyFile {ca.key_file}

database mdb
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {root}/data
maxsize 1073741824
dbnosync
index objectClass eq
index entryUUID eq
index uid,mail,cn eq
index member,uniqueMember eq
limits dn.exact="{READER_DN}" size.soft=500 size.hard=500 size.prtotal=unlimited
limits dn.exact="{CAPPED_DN}" size.soft={CAPPED_LIMIT} size.hard={CAPPED_LIMIT} size.prtotal={CAPPED_LIMIT}
overlay ppolicy
overlay refint
refint_attributes member uniqueMember
overlay memberof
overlay syncprov
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{READER_DN}" read by dn.exact="{CAPPED_DN}" read by self read by * none
"""


@dataclass
class Slapd:
    """A running slapd: its URLs, credentials and CA, and helpers to change its data."""

    root: Path
    ca: TestCA
    port: int
    tls_port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    suffix = SUFFIX
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    reader_dn = READER_DN
    reader_password = READER_PASSWORD
    capped_dn = CAPPED_DN

    def __post_init__(self) -> None:
        self.log = self.root / "slapd.log"

    @property
    def url(self) -> str:
        """Plain LDAP (StartTLS available) on 127.0.0.1."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def starttls_url(self) -> str:
        """Plain LDAP by the name the certificate carries, for StartTLS."""
        return f"ldap://localhost:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """LDAP over TLS, by the name its certificate carries."""
        return f"ldaps://localhost:{self.tls_port}"

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start slapd on this server's ports and return once it answers; raise if it cannot."""
        assert self.process is None, "already running"
        (self.root / "data").mkdir(exist_ok=True)
        conf = self.root / "slapd.conf"
        conf.write_text(_config(self.root, self.ca), encoding="utf-8")
        listen = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        with self.log.open("ab") as log:
            # -d keeps slapd in the foreground (slapd(8)), so the test owns and stops the process.
            self.process = subprocess.Popen(
                [_slapd(), "-f", str(conf), "-h", listen, "-d", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self.process is not None
        for _ in range(READY_ATTEMPTS):
            probe = subprocess.run(
                [_tool("ldapsearch"), "-x", "-H", self.url, "-b", "", "-s", "base", "-o", "nettimeout=2", "1.1"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            try:
                code = self.process.wait(timeout=0.05)  # waits on slapd exiting, not on a clock
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"slapd exited with {code} on start:\n{self.log.read_text(errors='replace')[-3000:]}")
        raise RuntimeError(f"slapd did not answer after {READY_ATTEMPTS} probes:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL) and wait for it; the data stays for a restart."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        """Whether the slapd process is alive."""
        return self.process is not None and self.process.poll() is None

    # -- data --------------------------------------------------------------------------------

    def _client(self, tool: str, ldif: str, *extra: str) -> None:
        result = subprocess.run(
            [_tool(tool), "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, *extra],
            input=ldif.encode(),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")

    def add(self, ldif: str) -> None:
        """Add every entry of ``ldif`` in one ``ldapadd``."""
        self._client("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        """Apply an LDIF of changes (``changetype: modify/modrdn/delete``) with ``ldapmodify``."""
        self._client("ldapmodify", ldif)

    def search(self, base: str, filter_: str = "(objectClass=*)", *attributes: str) -> str:
        """``ldapsearch`` as the admin, LDIF out (for checking what the server holds)."""
        result = subprocess.run(
            [
                _tool("ldapsearch"),
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                self.url,
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
                "-b",
                base,
                filter_,
                *attributes,
            ],
            capture_output=True,
            check=True,
        )
        return result.stdout.decode()


def _slapd() -> str:
    found = shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("slapd is not installed: run scripts/test, or apt-get install -y slapd ldap-utils")
    return found


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run scripts/test, or apt-get install -y ldap-utils")
    return found


def base_ldif() -> str:
    """The suffix, the services OU and the two reader accounts."""
    return "".join(
        [
            ldif_entry(SUFFIX, {"objectClass": ["dcObject", "organization"], "dc": "example", "o": "Example"}),
            ldif_entry(f"ou=services,{SUFFIX}", {"objectClass": "organizationalUnit", "ou": "services"}),
            ldif_entry(
                READER_DN,
                {"objectClass": ["applicationProcess", "simpleSecurityObject"], "cn": "syncd"}
                | {"userPassword": READER_PASSWORD},
            ),
            ldif_entry(
                CAPPED_DN,
                {"objectClass": ["applicationProcess", "simpleSecurityObject"], "cn": "capped"}
                | {"userPassword": READER_PASSWORD},
            ),
        ]
    )


@contextlib.contextmanager
def running_slapd(root: Path | None = None, ca: TestCA | None = None) -> Iterator[Slapd]:
    """A started slapd with the suffix and reader accounts loaded; stopped and removed on exit.

    A port taken between choosing it and slapd binding it makes slapd exit; then two fresh ports
    are tried (three starts at most).
    """
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="syncd-slapd-")))
        ca = ca or TestCA.create(root / "tls")
        server: Slapd | None = None
        for attempt in range(3):
            server = Slapd(root / f"server{attempt}", ca, _free_port(), _free_port())
            server.root.mkdir()
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        assert server is not None
        stack.callback(server.stop)
        server.add(base_ldif())
        yield server


# --- a test's own subtree ------------------------------------------------------------------------


def person(
    dn: str, uid: str, given: str, family: str, *, mail: str | None = None, locked: bool = False, **extra: str
) -> str:
    """An inetOrgPerson entry; ``locked`` sets ppolicy's permanent lock (``pwdAccountLockedTime:
    000001010000Z``, slapo-ppolicy(5))."""
    attrs: dict[str, str | list[str]] = {
        "objectClass": "inetOrgPerson",
        "uid": uid,
        "cn": f"{given} {family}",
        "givenName": given,
        "sn": family,
        "displayName": f"{given} {family}",
    }
    if mail:
        attrs["mail"] = mail
    if locked:
        attrs["pwdAccountLockedTime"] = "000001010000Z"
    attrs.update(extra)
    return ldif_entry(dn, attrs)


def group_of_names(dn: str, name: str, members: Sequence[str], *, unique: bool = False) -> str:
    """A groupOfNames (or groupOfUniqueNames) entry; an empty group gets the empty DN as its one
    member, the usual way round the MUST ``member`` (RFC 4519 §3.5)."""
    attribute = "uniqueMember" if unique else "member"
    return ldif_entry(
        dn,
        {
            "objectClass": "groupOfUniqueNames" if unique else "groupOfNames",
            "cn": name,
            attribute: list(members) or [""],
        },
    )


@dataclass(frozen=True)
class Tree:
    """``ou=<name>,dc=example,dc=com`` with ``ou=people``, ``ou=groups`` and ``ou=contractors`` below."""

    server: Slapd
    name: str

    @classmethod
    def create(cls, server: Slapd, name: str) -> Tree:
        """Add the subtree's OUs to ``server``."""
        tree = cls(server, name)
        server.add(
            "".join(
                ldif_entry(dn, {"objectClass": "organizationalUnit", "ou": dn.split(",", 1)[0][3:]})
                for dn in (tree.base, tree.people, tree.groups, tree.contractors)
            )
        )
        return tree

    @property
    def base(self) -> str:
        """The subtree's root."""
        return f"ou={self.name},{SUFFIX}"

    @property
    def people(self) -> str:
        """Where users live."""
        return f"ou=people,{self.base}"

    @property
    def groups(self) -> str:
        """Where groups live."""
        return f"ou=groups,{self.base}"

    @property
    def contractors(self) -> str:
        """Users outside the user base."""
        return f"ou=contractors,{self.base}"

    def user_dn(self, uid: str, ou: str | None = None) -> str:
        """The DN of user ``uid`` (in ``people`` unless ``ou`` is given)."""
        return f"uid={uid},{ou or self.people}"

    def group_dn(self, name: str) -> str:
        """The DN of group ``name``."""
        return f"cn={name},{self.groups}"

    def entry_uuids(self, base: str) -> dict[str, str]:
        """The entryUUID of every entry under ``base``, by DN (lower case), in one search."""
        found: dict[str, str] = {}
        dn = ""
        for line in self.server.search(base, "(objectClass=*)", "entryUUID").splitlines():
            if line.startswith("dn: "):
                dn = line[4:].lower()
            elif line.startswith("entryUUID: "):
                found[dn] = line.split(": ", 1)[1]
        return found

    def entry_uuid(self, dn: str) -> str:
        """The server-assigned entryUUID of ``dn``."""
        for line in self.server.search(dn, "(objectClass=*)", "entryUUID").splitlines():
            if line.startswith("entryUUID: "):
                return line.split(": ", 1)[1]
        raise LookupError(dn)
