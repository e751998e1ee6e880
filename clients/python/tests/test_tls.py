"""TLS to a node: mutual TLS works with the CA and a client certificate, and each wrong setting
fails with a message that names its cause and the fix (never a bare transport error)."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import tempfile

import pytest

from conftest import DevNode, quorate_bin
from quorate import BadInput, Node, Tls, Unreachable


@pytest.fixture(scope="module")
def tls_node():
    """A dev node that requires mutual TLS, the files `quorate tls gen` wrote for it, and a CA
    that did not sign its certificate."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="quorate-py-tls-"))
    home = root / "home"
    home.mkdir()
    run = lambda *args: subprocess.run([quorate_bin(), *args], check=True, capture_output=True)
    run("tls", "gen", "--out", str(root / "tls"), "--hosts", "127.0.0.1,localhost",
        "--home", str(home), "--mutual")
    run("tls", "gen", "--out", str(root / "other"))
    node = DevNode(home=home)
    yield node, root
    node.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_mutual_tls_with_the_ca_and_a_client_certificate(tls_node):
    node, root = tls_node
    tls = Tls(ca=root / "tls" / "ca.pem", cert=root / "tls" / "client.pem",
              key=root / "tls" / "client.key")
    with Node(f"https://{node.addr}", tls) as n:
        assert n.status().chain_id == "quorate-dev"


def test_each_wrong_tls_setting_names_its_fix(tls_node):
    node, root = tls_node
    https = f"https://{node.addr}"
    # Refused before any connection: an https URL without a CA, TLS for a plaintext URL,
    # a CA file that does not exist.
    with pytest.raises(BadInput, match="needs the CA"):
        Node(https)
    with pytest.raises(BadInput, match="use https://"):
        Node(node.url, Tls(ca=root / "tls" / "ca.pem"))
    with pytest.raises(BadInput, match="TLS files"):
        Node(https, Tls(ca=root / "missing.pem"))

    def failure(url: str, tls: Tls | None) -> Unreachable:
        with Node(url, tls, timeout_s=10) as n, pytest.raises(Unreachable) as caught:
            n.status()
        return caught.value

    # The CA that did not sign the node's certificate.
    e = failure(https, Tls(ca=root / "other" / "ca.pem"))
    assert "the CA" in e.fix and "signed the node's certificate" in e.fix, e
    # The right CA, no client certificate, against mutual TLS.
    e = failure(https, Tls(ca=root / "tls" / "ca.pem"))
    assert "may require a client certificate" in e.fix, e
    # Plaintext to a TLS node.
    e = failure(node.url, None)
    assert "use an https:// URL" in e.fix, e
