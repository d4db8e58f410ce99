"""LDAP and Active Directory source: ``[source] type = "ldap"``.

``conn`` is the seam to the directory server (and its ldap3 adapter).
"""
