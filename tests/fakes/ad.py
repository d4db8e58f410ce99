"""A fake Active Directory domain controller at the LDAP connector's seam (``connectors.ldap.conn``).

slapd covers LDAP itself; this covers what only AD does. Each rule below has a test in
``tests/ldap/test_ad_fake.py``:

1. **Bind** (MS-ADTS §3.1.1.3.4.1.1 / KB "LDAP error 49 sub-codes"): a DN or a userPrincipalName
   binds; a refusal is result 49 with the diagnostic ``80090308: LdapErr: DSID-0C09044E, comment:
   AcceptSecurityContext error, data <sub-code>, v4563``: 525 no such user, 52e wrong password;
   with the right password 530 logon hours, 532 password expired, 533 disabled, 701 account
   expired, 773 must reset password, 775 locked out. Searching unbound is result 1 ``000004DC``.
2. **Paging** (MS-ADTS §3.1.1.3.4.1.11, RFC 2696): at most ``MaxPageSize`` (1,000) entries per
   page whatever is asked; without the control, a search past 1,000 entries returns 1,000 and
   result 4 sizeLimitExceeded. A cookie belongs to one search; reusing it with another is result
   53 unwillingToPerform.
3. **Range retrieval** (MS-ADTS §3.1.1.3.1.3.3): a ``member`` of more than ``MaxValRange`` (1,500)
   values comes back as ``member;range=0-1499``; asking ``member;range=1500-*`` gives the next
   slice, the last one named ``member;range=<low>-*``.
4. **Matching rules** (MS-ADTS §3.1.1.3.4.4): ``1.2.840.113556.1.4.1941`` (in chain: transitive
   ``memberOf``/``member``, cycle-safe), ``.803`` (bitwise AND) and ``.804`` (bitwise OR).
   ``objectCategory=person`` matches the class's defaultObjectCategory DN. ``memberOf`` is the
   back-link of ``member``. String matching ignores case.
5. **Values**: ``objectGUID`` is 16 bytes in the little-endian GUID layout
   (``uuid.UUID(bytes_le=...)``); ``userAccountControl`` a decimal integer (0x2 ACCOUNTDISABLE,
   0x200 NORMAL_ACCOUNT); ``uSNChanged`` the domain controller's USN at the last change.
6. **rootDSE** (MS-ADTS §3.1.1.3.2): ``highestCommittedUSN``, ``dsServiceName``,
   ``defaultNamingContext``, ``supportedControl`` (paged results included); the NTDS Settings object
   named by ``dsServiceName`` carries ``invocationId``. USNs are per domain controller.
7. **Referrals**: a subtree search at the domain's root also returns continuation references to
   the ForestDnsZones, DomainDnsZones and Configuration partitions.
8. **Linked attributes** (MS-ADTS §3.1.1.1.6): ``member`` names objects by link, so renaming a
   user changes the DN its groups show without a write to the groups (their ``uSNChanged`` stays).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from connectors.ldap.conn import Endpoint, Entry, LdapFailure, Page, SearchScope


MAX_PAGE_SIZE = 1000
MAX_VAL_RANGE = 1500
IN_CHAIN = "1.2.840.113556.1.4.1941"
BIT_AND = "1.2.840.113556.1.4.803"
BIT_OR = "1.2.840.113556.1.4.804"
ACCOUNTDISABLE = 0x2
NORMAL_ACCOUNT = 0x200
SUB_CODES = {"logon_hours": "530", "password_expired": "532", "disabled": "533", "expired": "701"}
SUB_CODES |= {"must_reset": "773", "locked": "775"}


def _bind_refusal(sub: str) -> LdapFailure:
    message = f"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {sub}, v4563"
    return LdapFailure("result", f"bind answered 49 invalidCredentials: {message}", code=49, message=message)


def norm(dn: str) -> str:
    """A DN compared the way AD compares them: case and spaces around separators ignored."""
    return ",".join(part.strip().casefold() for part in re.split(r"(?<!\\),", dn))


@dataclass
class Obj:
    """A directory object: attribute name (as AD spells it) → values (text, or bytes for binary)."""

    dn: str
    attrs: dict[str, list[str | bytes]]
    usn: int = 0

    def get(self, name: str) -> list[str | bytes]:
        """The values of ``name``, any case."""
        for key, values in self.attrs.items():
            if key.casefold() == name.casefold():
                return values
        return []


@dataclass
class Search:
    """One search the fake answered (for tests that count requests)."""

    base: str
    filter: str
    attributes: tuple[str, ...]
    scope: str
    page_size: int


@dataclass
class FakeAD:
    """One domain controller of ``corp.example.com`` with users, groups and bind accounts."""

    domain: str = "DC=corp,DC=example,DC=com"
    objects: dict[str, Obj] = field(default_factory=dict)
    usn: int = 12000
    searches: list[Search] = field(default_factory=list)
    binds: list[str] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)  # normalised DN → password
    states: dict[str, str] = field(default_factory=dict)  # normalised DN → a SUB_CODES key
    server_name: str = "DC1"
    invocation_id: uuid.UUID = field(default_factory=uuid.uuid4)
    down: bool = False
    on_search: Callable[[Search], None] | None = None  # called after each answered search
    unreachable_for: int = 0  # the next this many connects find no server
    connects: int = 0
    _cookies: dict[bytes, tuple[tuple[str, str, tuple[str, ...], str], int]] = field(default_factory=dict)
    _cookie_ids: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        for ou in ("OU=Staff", "OU=Groups", "OU=Contractors", "OU=Service Accounts"):
            self._put(f"{ou},{self.domain}", {"objectClass": ["top", "organizationalUnit"]})
        self._put(
            self.ntds_settings, {"objectClass": ["top", "nTDSDSA"], "invocationId": [self.invocation_id.bytes_le]}
        )

    @property
    def ntds_settings(self) -> str:
        """The DN rootDSE's dsServiceName names."""
        site = f"CN=Default-First-Site-Name,CN=Sites,CN=Configuration,{self.domain}"
        return f"CN=NTDS Settings,CN={self.server_name},CN=Servers,{site}"

    # -- building the directory -------------------------------------------------------------

    def _put(self, dn: str, attrs: dict[str, list[str | bytes]]) -> Obj:
        self.usn += 1
        obj = Obj(dn, attrs, self.usn)
        self.objects[norm(dn)] = obj
        return obj

    def touch(self, dn: str) -> None:
        """Record a change to ``dn``: it gets the next USN, as every originating write does."""
        self.usn += 1
        self.objects[norm(dn)].usn = self.usn

    def add_user(
        self,
        sam: str,
        given: str,
        family: str,
        *,
        ou: str = "OU=Staff",
        upn: str | None = None,
        mail: str | None = None,
        disabled: bool = False,
        password: str | None = None,
        **extra: str,
    ) -> str:
        """Add a user; returns its DN. ``password`` makes it a bind account."""
        dn = f"CN={given} {family},{ou},{self.domain}"
        attrs: dict[str, list[str | bytes]] = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "objectCategory": [f"CN=Person,CN=Schema,CN=Configuration,{self.domain}"],
            "cn": [f"{given} {family}"],
            "sAMAccountName": [sam],
            "userPrincipalName": [upn or f"{sam}@corp.example.com"],
            "givenName": [given],
            "sn": [family],
            "displayName": [f"{given} {family}"],
            "objectGUID": [uuid.uuid4().bytes_le],
            "userAccountControl": [str(NORMAL_ACCOUNT | (ACCOUNTDISABLE if disabled else 0))],
        }
        if mail:
            attrs["mail"] = [mail]
        for key, value in extra.items():
            attrs[key] = [value]
        self._put(dn, attrs)
        if password is not None:
            self.passwords[norm(dn)] = password
        return dn

    def add_object(self, dn: str, attrs: dict[str, list[str | bytes]]) -> str:
        """Add any object (a computer, a contact) as given, with a fresh objectGUID."""
        self._put(dn, {"objectGUID": [uuid.uuid4().bytes_le], **attrs})
        return dn

    def add_group(self, name: str, members: Sequence[str] = (), *, ou: str = "OU=Groups") -> str:
        """Add a global security group with ``members`` (DNs); returns its DN."""
        dn = f"CN={name},{ou},{self.domain}"
        self._put(
            dn,
            {
                "objectClass": ["top", "group"],
                "objectCategory": [f"CN=Group,CN=Schema,CN=Configuration,{self.domain}"],
                "cn": [name],
                "sAMAccountName": [name],
                "objectGUID": [uuid.uuid4().bytes_le],
                "groupType": [str(-2147483646)],
                "member": list(members),
            },
        )
        return dn

    def add_members(self, group: str, *members: str) -> None:
        """Add ``members`` to ``group`` (one change to the group)."""
        self.objects[norm(group)].get("member").extend(members)
        self.touch(group)

    def remove_members(self, group: str, *members: str) -> None:
        """Remove ``members`` from ``group``."""
        gone = {norm(m) for m in members}
        obj = self.objects[norm(group)]
        obj.attrs["member"] = [m for m in obj.get("member") if norm(str(m)) not in gone]
        self.touch(group)

    def rename(self, dn: str, new_cn: str, *, ou: str | None = None) -> str:
        """Rename ``dn`` (a modrdn, into ``ou`` when given): group ``member`` values follow, as AD's
        linked attributes do, without changing the groups (their uSNChanged stays)."""
        obj = self.objects.pop(norm(dn))
        parent = f"{ou},{self.domain}" if ou else obj.dn.split(",", 1)[1]
        new_dn = f"CN={new_cn},{parent}"
        obj.dn = new_dn
        obj.attrs["cn"] = [new_cn]
        self.objects[norm(new_dn)] = obj
        for other in self.objects.values():
            members = other.get("member")
            for i, member in enumerate(members):
                if norm(str(member)) == norm(dn):
                    members[i] = new_dn
        self.touch(new_dn)
        return new_dn

    def set(self, dn: str, name: str, *values: str | bytes) -> None:
        """Replace an attribute of ``dn``."""
        obj = self.objects[norm(dn)]
        for key in list(obj.attrs):
            if key.casefold() == name.casefold():
                del obj.attrs[key]
        if values:
            obj.attrs[name] = list(values)
        self.touch(dn)

    def disable(self, dn: str) -> None:
        """Set ACCOUNTDISABLE in userAccountControl."""
        uac = int(self.objects[norm(dn)].get("userAccountControl")[0])
        self.set(dn, "userAccountControl", str(uac | ACCOUNTDISABLE))

    def delete(self, dn: str) -> None:
        """Delete an object; group member links to it go too (AD keeps links consistent)."""
        del self.objects[norm(dn)]
        for obj in self.objects.values():
            members = obj.get("member")
            if any(norm(str(m)) == norm(dn) for m in members):
                obj.attrs["member"] = [m for m in members if norm(str(m)) != norm(dn)]
                self.touch(obj.dn)

    # -- the seam ------------------------------------------------------------------------------

    def connect(self, endpoint: Endpoint) -> FakeADConnection:
        """The fake's :data:`connectors.ldap.conn.Connect`."""
        self.connects += 1
        if self.unreachable_for > 0:
            self.unreachable_for -= 1
            raise LdapFailure("unreachable", "connection refused")
        if self.down:
            raise LdapFailure("unreachable", "connection refused")
        conn = FakeADConnection(self)
        if endpoint.bind_dn:
            password = endpoint.password.get_secret_value() if endpoint.password else ""
            conn.bind(endpoint.bind_dn, password)
        return conn

    def _account(self, name: str) -> str | None:
        if norm(name) in self.passwords:
            return norm(name)
        for key in self.passwords:
            upns = [str(v).casefold() for v in self.objects[key].get("userPrincipalName")]
            if name.casefold() in upns:
                return key
        return None

    def root_dse(self) -> Entry:
        """The rootDSE as a DC answers it."""
        return Entry(
            "",
            {
                "highestCommittedUSN": [str(self.usn).encode()],
                "dsServiceName": [self.ntds_settings.encode()],
                "defaultNamingContext": [self.domain.encode()],
                "supportedControl": [b"1.2.840.113556.1.4.319", b"1.2.840.113556.1.4.417"],
                "supportedCapabilities": [b"1.2.840.113556.1.4.800"],
            },
        )


class FakeADConnection:
    """A connection to :class:`FakeAD`."""

    def __init__(self, ad: FakeAD) -> None:
        self.ad = ad
        self.bound = False

    def bind(self, who: str, password: str) -> None:
        """A simple bind as ``who`` (a DN or a UPN)."""
        self.ad.binds.append(who)
        key = self.ad._account(who)
        if key is None:
            raise _bind_refusal("525")
        if self.ad.passwords[key] != password:
            raise _bind_refusal("52e")
        state = self.ad.states.get(key)
        if state:
            raise _bind_refusal(SUB_CODES[state])
        uac = self.ad.objects[key].get("userAccountControl")
        if uac and int(uac[0]) & ACCOUNTDISABLE:
            raise _bind_refusal("533")
        self.bound = True

    def search(
        self,
        base: str,
        filter_: str,
        attributes: Sequence[str],
        *,
        scope: SearchScope = "subtree",
        page_size: int = 0,
        cookie: bytes = b"",
    ) -> Page:
        """Answer one search request the way a DC does (see the module docstring)."""
        ad = self.ad
        if ad.down:
            raise LdapFailure("unreachable", "the server closed the connection")
        ad.searches.append(Search(base, filter_, tuple(attributes), scope, page_size))
        if not self.bound:
            message = (
                "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful "
                "bind must be completed on the connection., data 0, v4563"
            )
            raise LdapFailure("result", f"search answered 1 operationsError: {message}", code=1, message=message)
        if base == "" and scope == "base":
            return Page([_project(ad.root_dse(), attributes)])
        matcher = parse(filter_)
        key = (norm(base), filter_, tuple(attributes), scope)
        if norm(base) not in ad.objects and norm(base) != norm(ad.domain):
            message = (
                f"0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'{ad.domain}'"
            )
            raise LdapFailure("result", f"search answered 32 noSuchObject: {message}", code=32, message=message)
        found = [o for o in ad.objects.values() if _in_scope(o.dn, base, scope) and matcher(o, ad)]
        start = 0
        if cookie:
            saved = ad._cookies.pop(cookie, None)
            if saved is None or saved[0] != key:
                message = "00002024: SvcErr: DSID-02100AB3, problem 5003 (WILL_NOT_PERFORM), data 0"
                raise LdapFailure(
                    "result", f"search answered 53 unwillingToPerform: {message}", code=53, message=message
                )
            start = saved[1]
        referrals: tuple[str, ...] = ()
        if scope == "subtree" and norm(base) == norm(ad.domain) and not cookie:
            zone = ad.domain.replace("DC=", "").replace(",", ".").lower()
            referrals = (
                f"ldap://ForestDnsZones.{zone}/DC=ForestDnsZones,{ad.domain}",
                f"ldap://DomainDnsZones.{zone}/DC=DomainDnsZones,{ad.domain}",
                f"ldap://{zone}/CN=Configuration,{ad.domain}",
            )
        if not page_size:
            if len(found) > MAX_PAGE_SIZE:
                raise LdapFailure("result", "search answered 4 sizeLimitExceeded", code=4)
            return Page([_project(_entry(o, ad, attributes), attributes) for o in found], b"", referrals)
        size = min(page_size, MAX_PAGE_SIZE)
        chunk = found[start : start + size]
        next_cookie = b""
        if start + size < len(found):
            next_cookie = f"ad-cookie-{next(ad._cookie_ids)}".encode()
            ad._cookies[next_cookie] = (key, start + size)
        page = Page([_project(_entry(o, ad, attributes), attributes) for o in chunk], next_cookie, referrals)
        if ad.on_search is not None:
            ad.on_search(ad.searches[-1])
        return page

    def close(self) -> None:
        """Nothing to release."""
        self.bound = False


def _in_scope(dn: str, base: str, scope: str) -> bool:
    target, root = norm(dn), norm(base)
    if scope == "base":
        return target == root
    if not target.endswith("," + root):
        return target == root and scope == "subtree"
    return scope == "subtree" or target.count(",") == root.count(",") + 1


def _entry(obj: Obj, ad: FakeAD, attributes: Sequence[str]) -> Entry:
    values = {k: [v if isinstance(v, bytes) else v.encode() for v in vs] for k, vs in obj.attrs.items() if vs}
    values["uSNChanged"] = [str(obj.usn).encode()]
    values["distinguishedName"] = [obj.dn.encode()]
    asked = any(a.casefold() == "memberof" for a in attributes)  # a back-link is computed only when asked
    member_of = _values(obj, ad, "memberOf") if asked else []
    if member_of:
        values["memberOf"] = [dn.encode() for dn in member_of]
    return Entry(obj.dn, values)


_RANGE = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)


def _project(entry: Entry, attributes: Sequence[str]) -> Entry:
    """The requested attributes only, with range retrieval on ``member``."""
    out: dict[str, list[bytes]] = {}
    wanted = [a for a in attributes if a != "1.1"]
    for asked in wanted:
        ranged = _RANGE.match(asked)
        name = ranged["name"] if ranged else asked
        for key, values in entry.attributes.items():
            if key.casefold() != name.casefold():
                continue
            if ranged is None and len(values) <= MAX_VAL_RANGE:
                out[key] = list(values)
                continue
            low = int(ranged["low"]) if ranged else 0
            high = low + MAX_VAL_RANGE - 1
            if ranged and ranged["high"] != "*":
                high = min(high, int(ranged["high"]))
            part = list(values[low : high + 1])
            last = high >= len(values) - 1
            out[f"{key};range={low}-{'*' if last else high}"] = part
    return Entry(entry.dn, out)


# --- filters (RFC 4515) ------------------------------------------------------------------------

Matcher = Callable[[Obj, FakeAD], bool]


def parse(text: str) -> Matcher:
    """Parse an RFC 4515 filter into a function of (object, directory); ValueError on bad syntax."""
    matcher, rest = _parse(text.strip())
    if rest.strip():
        raise ValueError(f"trailing text in filter: {rest!r}")
    return matcher


def _parse(text: str) -> tuple[Matcher, str]:
    if not text.startswith("("):
        raise ValueError(f"filter must start with '(': {text!r}")
    op = text[1]
    if op in "&|!":
        parts: list[Matcher] = []
        rest = text[2:]
        while rest.startswith("("):
            part, rest = _parse(rest)
            parts.append(part)
        if not rest.startswith(")"):
            raise ValueError("unbalanced filter")
        if op == "&":
            return (lambda o, d: all(p(o, d) for p in parts)), rest[1:]
        if op == "|":
            return (lambda o, d: any(p(o, d) for p in parts)), rest[1:]
        return (lambda o, d: not parts[0](o, d)), rest[1:]
    end = _close(text)
    return _item(text[1:end]), text[end + 1 :]


def _close(text: str) -> int:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == ")" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced filter")


def _unescape(value: str) -> str:
    return re.sub(r"\\([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), value)


def _item(item: str) -> Matcher:
    extensible = re.match(r"^([\w-]+):([\d.]+):=(.*)$", item)
    if extensible:
        attr, rule, value = extensible[1], extensible[2], _unescape(extensible[3])
        return _extensible(attr, rule, value)
    m = re.match(r"^([\w-]+)(>=|<=|~=|=)(.*)$", item)
    if not m:
        raise ValueError(f"bad filter item {item!r}")
    attr, op, value = m[1], m[2], m[3]
    if op == "=" and value == "*":
        return lambda o, d: bool(_values(o, d, attr))
    if op == "=" and "*" in value:
        pattern = re.compile(
            "^" + ".*".join(re.escape(_unescape(p)) for p in value.split("*")) + "$", re.IGNORECASE | re.DOTALL
        )
        return lambda o, d: any(pattern.match(v) for v in _values(o, d, attr))
    value = _unescape(value)
    if op in (">=", "<="):
        sign = 1 if op == ">=" else -1
        return lambda o, d: any(
            v.lstrip("-").isdigit() and sign * (int(v) - int(value)) >= 0 for v in _values(o, d, attr)
        )
    if attr.casefold() == "objectcategory" and "=" not in value:
        value = f"CN={value},CN=Schema,CN=Configuration"
        return lambda o, d: any(norm(v).startswith(norm(value) + ",") for v in _values(o, d, attr))
    if attr.casefold() in {"member", "memberof", "distinguishedname", "manager", "objectcategory"}:
        return lambda o, d: any(norm(v) == norm(value) for v in _values(o, d, attr))
    return lambda o, d: any(v.casefold() == value.casefold() for v in _values(o, d, attr))


def _extensible(attr: str, rule: str, value: str) -> Matcher:
    if rule in (BIT_AND, BIT_OR):
        mask = int(value)
        if rule == BIT_AND:
            return lambda o, d: any(int(v) & mask == mask for v in _values(o, d, attr))
        return lambda o, d: any(int(v) & mask for v in _values(o, d, attr))
    if rule == IN_CHAIN and attr.casefold() == "memberof":
        return lambda o, d: norm(value) in _groups_of(o, d)
    if rule == IN_CHAIN and attr.casefold() == "member":
        return lambda o, d: norm(o.dn) in _groups_of(d.objects.get(norm(value)), d)
    raise ValueError(f"matching rule {rule} is not supported on {attr}")


def _values(obj: Obj, ad: FakeAD, attr: str) -> list[str]:
    if attr.casefold() == "memberof":  # the back-link of member, computed as AD does
        return [g.dn for g in ad.objects.values() if any(norm(str(m)) == norm(obj.dn) for m in g.get("member"))]
    if attr.casefold() == "usnchanged":
        return [str(obj.usn)]
    if attr.casefold() == "distinguishedname":
        return [obj.dn]
    return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in obj.get(attr)]


def _groups_of(obj: Obj | None, ad: FakeAD) -> set[str]:
    """Every group ``obj`` is in, directly or through nesting (cycle-safe)."""
    if obj is None:
        return set()
    seen: set[str] = set()
    stack = [obj.dn]
    while stack:
        dn = norm(stack.pop())
        for group in ad.objects.values():
            gdn = norm(group.dn)
            if gdn not in seen and any(norm(str(m)) == dn for m in group.get("member")):
                seen.add(gdn)
                stack.append(group.dn)
    return seen
