"""The cluster CA, node certificates and revocation lists (appliance.security.certs)."""

from __future__ import annotations

import pytest

from appliance.security import certs
from appliance.security.certs import CertError
from appliance.security.keys import generate_key
from appliance.security.nodetls import NodeTLS

NODE = "ab" * 16


def test_every_holder_of_a_key_derives_the_same_ca_and_another_key_another():
    key = generate_key()
    one, two = certs.cluster_ca(key), certs.cluster_ca(key)
    assert one.pem == two.pem  # byte for byte: nothing needs to travel
    assert certs.cluster_ca(generate_key()).pem != one.pem


def test_a_node_certificate_is_endorsed_for_its_id_and_key_only():
    key = generate_key()
    ca = certs.cluster_ca(key)
    node_key = certs.new_node_key()
    cert = certs.issue_node_cert(ca, NODE, node_key)
    assert certs.endorsed(ca, cert, NODE, node_key)
    assert certs.node_id_of_serial(cert.serial_number) == NODE
    assert not certs.endorsed(certs.cluster_ca(generate_key()), cert, NODE, node_key)
    assert not certs.endorsed(ca, cert, "cd" * 16, node_key)
    assert not certs.endorsed(ca, cert, NODE, certs.new_node_key())
    with pytest.raises(CertError, match="32 lowercase hex"):
        certs.issue_node_cert(ca, "not-an-id", node_key)


def test_revocation_lists_are_the_clusters_and_merge_to_their_union(tmp_path):
    key = generate_key()
    tls = NodeTLS.load(tmp_path / "a", NODE, key)
    assert tls.revocations.node_ids == frozenset()
    theirs = certs.issue_revocations(certs.cluster_ca(key), {"11" * 16}, 3)
    assert tls.revoke("22" * 16)
    assert tls.merge(theirs.pem)  # neither held both: merged and re-signed
    assert tls.revocations.node_ids == {"11" * 16, "22" * 16} and tls.revocations.number == 4
    assert not tls.merge(theirs.pem)  # nothing new
    assert tls.revoked("11" * 16) and not tls.revoked(NODE)
    # The list on disk is the merged one (other processes and the CLI read it).
    again = NodeTLS.load(tmp_path / "a", NODE, key)
    assert again.revocations.node_ids == tls.revocations.node_ids
    # Only a holder of the key can make one.
    forged = certs.issue_revocations(certs.cluster_ca(generate_key()), {NODE}, 9)
    with pytest.raises(CertError, match="not signed with this cluster's key"):
        tls.merge(forged.pem)
    with pytest.raises(CertError, match="not a PEM"):
        tls.merge(b"garbage")


def test_a_node_keeps_its_key_and_gets_a_new_certificate_when_the_key_changes(tmp_path):
    first = NodeTLS.load(tmp_path, NODE, generate_key())
    key_pem = first.key_path.read_bytes()
    cert_pem = first.cert_path.read_bytes()
    assert oct(first.key_path.stat().st_mode & 0o777) == "0o600"
    same = NodeTLS.load(tmp_path, NODE, generate_key())
    assert same.key_path.read_bytes() == key_pem and same.cert_path.read_bytes() != cert_pem
